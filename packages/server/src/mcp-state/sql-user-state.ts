import { type Kysely, sql } from 'kysely'
import { type Clock, systemClock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Store } from '../store/db.js'
import { runExclusive } from '../store/exclusive.js'
import type { Database } from '../store/schema.js'

/** A JSON value, as the state store keeps it. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue }

/** Whose state: one person (`sub` of the verified token) at one MCP server (its resource indicator). */
export interface UserStateScope {
  resource: string
  sub: string
}

/**
 * A small key-value store scoped by resource and `sub`. State follows the person, never an MCP
 * session: sessions do not exist in MCP 2026-07-28, and a ban tied to a session would end when
 * the client reconnects.
 */
export interface UserStateStore {
  /** The value under `key`, or undefined when there is none. */
  read(scope: UserStateScope, key: string): Promise<JsonValue | undefined>
  /**
   * Atomic read-modify-write: `fn` gets the current value (undefined when none) and returns the
   * new one, or undefined to delete the key. No other writer of the same key, in this process or
   * another, runs between the read and the write, so `fn` runs exactly once. `fn` must not use
   * the store itself. Resolves to what was stored.
   */
  update<T extends JsonValue>(
    scope: UserStateScope,
    key: string,
    fn: (current: JsonValue | undefined) => T | undefined,
  ): Promise<T | undefined>
  /** Removes `key`; true when there was a value. */
  delete(scope: UserStateScope, key: string): Promise<boolean>
}

/** Longest accepted key, resource or sub; these are identifiers, not data. */
const MAX_NAME_LENGTH = 512
/** Largest stored value: state is for flags and small records, not documents. */
export const MAX_STATE_VALUE_BYTES = 64 * 1024

// PostgreSQL two-key advisory locks live in a key space apart from the one-key locks of
// store/exclusive.ts; this first key marks "per-user MCP state".
const PG_LOCK_CLASS = 0x6d637073

function requireName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `state ${what} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`,
    )
  return value
}

function encode(value: unknown, key: string): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new DeputyError('ERR_INVALID_INPUT', `state value for "${key}" is not JSON`, {
      cause: err,
    })
  }
  // JSON.stringify drops functions and symbols to undefined; storing nothing would be a surprise.
  if (text === undefined)
    throw new DeputyError('ERR_INVALID_INPUT', `state value for "${key}" is not JSON`)
  if (Buffer.byteLength(text, 'utf8') > MAX_STATE_VALUE_BYTES)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `state value for "${key}" is larger than ${MAX_STATE_VALUE_BYTES / 1024} KiB`,
    )
  return text
}

/**
 * The per-user state store on Deputy's own database (SQLite or PostgreSQL).
 *
 * Atomicity: on SQLite each update is a `BEGIN IMMEDIATE` transaction, which takes the database's
 * single writer lock before reading, so writers in other connections and processes wait (the
 * busy timeout) instead of interleaving. On PostgreSQL each update takes a transaction-scoped
 * advisory lock on its (resource, sub, key), which also covers a key that does not exist yet — a
 * `SELECT … FOR UPDATE` locks nothing when there is no row, and two first writers would race.
 * The version column is compared on write as a second line of defence.
 */
export function createSqlUserStateStore(deps: { store: Store; clock?: Clock }): UserStateStore {
  const { store } = deps
  const clock = deps.clock ?? systemClock

  function check(scope: UserStateScope, key: string): void {
    requireName(scope?.resource, 'resource')
    requireName(scope?.sub, 'sub')
    requireName(key, 'key')
  }

  async function locked<T>(
    scope: UserStateScope,
    key: string,
    work: (db: Kysely<Database>) => Promise<T>,
  ): Promise<T> {
    // The lock number only matters on PostgreSQL, where we take a finer per-key lock instead.
    if (store.dialect === 'sqlite') return runExclusive(store, PG_LOCK_CLASS, work)
    return store.db.transaction().execute(async (trx) => {
      const name = JSON.stringify([scope.resource, scope.sub, key])
      // A hash collision only makes two keys wait for each other; it never mixes their values.
      await sql`SELECT pg_advisory_xact_lock(${PG_LOCK_CLASS}::int4, hashtext(${name}))`.execute(
        trx,
      )
      return work(trx)
    })
  }

  function row(db: Kysely<Database>, scope: UserStateScope, key: string) {
    return db
      .selectFrom('mcp_user_state')
      .select(['value', 'version'])
      .where('resource', '=', scope.resource)
      .where('sub', '=', scope.sub)
      .where('key', '=', key)
  }

  return {
    async read(scope, key) {
      check(scope, key)
      const found = await row(store.db, scope, key).executeTakeFirst()
      return found ? (JSON.parse(found.value) as JsonValue) : undefined
    },

    async update(scope, key, fn) {
      check(scope, key)
      return locked(scope, key, async (db) => {
        const current = await row(db, scope, key).executeTakeFirst()
        const next = fn(current ? (JSON.parse(current.value) as JsonValue) : undefined)
        if (next === undefined) {
          if (current)
            await db
              .deleteFrom('mcp_user_state')
              .where('resource', '=', scope.resource)
              .where('sub', '=', scope.sub)
              .where('key', '=', key)
              .execute()
          return undefined
        }
        const value = encode(next, key)
        const now = clock.now().getTime()
        if (!current) {
          await db
            .insertInto('mcp_user_state')
            .values({ ...scope, key, value, version: 1, updated_at: now })
            .execute()
          return JSON.parse(value) as typeof next
        }
        const result = await db
          .updateTable('mcp_user_state')
          .set({ value, version: current.version + 1, updated_at: now })
          .where('resource', '=', scope.resource)
          .where('sub', '=', scope.sub)
          .where('key', '=', key)
          .where('version', '=', current.version)
          .executeTakeFirst()
        if (Number(result.numUpdatedRows) !== 1)
          throw new DeputyError(
            'ERR_CONFLICT',
            `state "${key}" changed while it was being updated; try again`,
          )
        return JSON.parse(value) as typeof next
      })
    },

    async delete(scope, key) {
      check(scope, key)
      return locked(scope, key, async (db) => {
        const result = await db
          .deleteFrom('mcp_user_state')
          .where('resource', '=', scope.resource)
          .where('sub', '=', scope.sub)
          .where('key', '=', key)
          .executeTakeFirst()
        return Number(result.numDeletedRows) > 0
      })
    },
  }
}
