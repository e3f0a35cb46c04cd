/** A JSON value, the only kind of thing per-user state holds (so every store can persist it). */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue }

/** Whose state: one person (`sub`) at one resource, never an MCP session or a client-chosen handle. */
export interface StateScope {
  readonly resource: string
  readonly sub: string
}

/**
 * Computes the next value from the current one (undefined when absent); returning undefined
 * deletes the key. Must be pure and synchronous: a store may call it again after a conflict.
 */
export type StateUpdater<T extends JsonValue = JsonValue> = (
  current: T | undefined,
) => T | undefined

/**
 * Durable per-user key-value storage. `update` is an atomic read-modify-write: concurrent updates
 * of one key never lose a write. Every implementation passes `stateStoreConformance` from
 * `@deputy/mcp/testing`.
 */
export interface StateStore {
  read(scope: StateScope, key: string): Promise<JsonValue | undefined>
  update(scope: StateScope, key: string, fn: StateUpdater): Promise<JsonValue | undefined>
}

/** The state of the current caller, as tool handlers and policies see it. */
export interface UserState {
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined>
  /** Atomic read-modify-write; resolves with the stored value. */
  update<T extends JsonValue = JsonValue>(key: string, fn: StateUpdater<T>): Promise<T | undefined>
  set(key: string, value: JsonValue): Promise<void>
  delete(key: string): Promise<void>
}

const MAX_KEY_LENGTH = 256

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`state keys are 1 to ${MAX_KEY_LENGTH} characters`)
  }
}

// A JSON round trip: the stored value can never be mutated through a reference handed out, and
// the in-memory store keeps exactly what a SQL store would keep.
function copy<T extends JsonValue>(value: T | undefined): T | undefined {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as T)
}

/** An in-memory {@link StateStore} for tests and demos; state is lost when the process exits. */
export function memoryStateStore(): StateStore {
  const data = new Map<string, string>()
  const slot = (scope: StateScope, key: string) => JSON.stringify([scope.resource, scope.sub, key])
  return {
    async read(scope, key) {
      checkKey(key)
      const stored = data.get(slot(scope, key))
      return stored === undefined ? undefined : (JSON.parse(stored) as JsonValue)
    },
    async update(scope, key, fn) {
      checkKey(key)
      const id = slot(scope, key)
      const stored = data.get(id)
      // No await between the read and the write: on one event loop this is atomic.
      const next = fn(stored === undefined ? undefined : (JSON.parse(stored) as JsonValue))
      if (next === undefined) data.delete(id)
      else data.set(id, JSON.stringify(next))
      return copy(next)
    },
  }
}

/** Binds a store to one caller's scope. */
export function userState(store: StateStore, scope: StateScope): UserState {
  const frozen = Object.freeze({ resource: scope.resource, sub: scope.sub })
  return {
    get: async <T extends JsonValue>(key: string) =>
      (await store.read(frozen, key)) as T | undefined,
    update: async <T extends JsonValue>(key: string, fn: StateUpdater<T>) =>
      (await store.update(frozen, key, fn as unknown as StateUpdater)) as T | undefined,
    set: async (key, value) => {
      await store.update(frozen, key, () => value)
    },
    delete: async (key) => {
      await store.update(frozen, key, () => undefined)
    },
  }
}

/** The state handed out when no store was configured: using it is a programming error. */
export function missingState(): UserState {
  const fail = async (): Promise<never> => {
    throw new Error('no state store configured: pass `state` to protectMcpServer')
  }
  return { get: fail, update: fail, set: fail, delete: fail }
}
