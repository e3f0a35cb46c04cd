import type { Logger } from 'pino'
import {
  type CedarEntity,
  type CedarSchema,
  type PolicyJson,
  policyToJson,
  preparse,
} from './cedar.js'
import { type ContextShape, ENTITY } from './entities.js'
import { asCedarSchema } from './schema.js'
import { CEDAR_NAMESPACE, type CedarSchemaJson, type Policies, type StoredPolicy } from './types.js'

// The policy set in force in this process. Each policy-set version is loaded
// once: the policies are split by the action their scope names (plus those naming none) and each
// slice is preparsed in cedar-wasm, so a decision evaluates only its action's policies whatever
// the size of the set. Every process polls the set version and reloads when another process
// changed it; a load that fails keeps the version in force.

/** What the loader reads: the versioned policy store, and how often to look at its version. */
export interface PolicySetLoaderDeps {
  policies: Pick<Policies, 'setVersion' | 'list' | 'actions' | 'schema'>
  logger: Logger
  /** How often to look for a new policy-set version (config `policyRefreshIntervalMs`). */
  refreshIntervalMs: number
}

/** What the engine knows of a policy when it explains a decision. */
export interface PolicyFacts {
  readonly effect: 'permit' | 'forbid'
  readonly description: string | null
  readonly message: string | null
}

/** One action of the loaded set: its preparsed slice and what its context declares. */
export interface ActionSlice {
  /** The preparsed policy-set id in cedar-wasm. */
  readonly setId: string
  /** The schema of this action alone, preparsed in cedar-wasm under `setId` on first use. */
  readonly schema: CedarSchema
  /** The slice's policies as text (the simulation's partial evaluation takes text). */
  readonly texts: Readonly<Record<string, string>>
  readonly shape: ContextShape
  /** Policies of the slice that read `context.arguments`. */
  readonly readsArguments: ReadonlySet<string>
  /** Whether any policy of the slice reads `context.approved` (else no second run is needed). */
  readonly readsApproved: boolean
  /** The MCP server the tool belongs to; null for Deputy's own actions. */
  readonly resource: string | null
  /** The tool's name on that server; null for Deputy's own actions. */
  readonly tool: string | null
  /**
   * The action and its action groups as Cedar entities, for the runs made without the schema
   * (which otherwise supplies them): `action in Deputy::Action::"<resource>"` must hold there too.
   */
  readonly entities: readonly CedarEntity[]
}

/** A policy-set version as loaded: the preparsed schema and one preparsed slice per action. */
export interface LoadedSet {
  readonly version: number
  /** Which of this engine's two name sets in cedar-wasm it occupies (0 or 1). */
  readonly generation: number
  readonly actions: ReadonlyMap<string, ActionSlice>
  /** Actions whose schema is preparsed for this version. */
  readonly schemasReady: Set<string>
  readonly policies: ReadonlyMap<string, PolicyFacts>
}

/** The set in force, kept current. */
export interface PolicySetLoader {
  /** The set in force, loaded (and the polling started) on first use; undefined if none loads. */
  current(): Promise<LoadedSet | undefined>
  /**
   * The set in force at this moment, without waiting. A decision reads it after its last await,
   * so a reload that landed meanwhile decides it: nothing older is used once something newer is in.
   */
  inForce(): LoadedSet | undefined
  /** Why the last load failed, for the fail-closed explanation; undefined after a success. */
  lastLoadError(): string | undefined
  /** Starts the polling and reloads now if the stored version moved. */
  refresh(): Promise<void>
  /** Stops the polling timer. */
  close(): void
}

/**
 * Preparsed schemas and policy sets live in cedar-wasm under names that cannot be dropped; each
 * loader uses its own number and two generations, so a process holds at most two versions per
 * engine whatever the number of reloads, and a reload never overwrites the set in force.
 */
let loaders = 0

/** Loads the stored policy set into cedar-wasm and keeps it in step with the store. */
export function createPolicySetLoader(deps: PolicySetLoaderDeps): PolicySetLoader {
  const instance = ++loaders
  let loaded: LoadedSet | undefined
  let lastLoadError: string | undefined
  let reloading: Promise<void> | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  let closed = false

  async function load(): Promise<LoadedSet> {
    // The version is read first: if a write lands while the rest is read, the next poll sees a
    // newer number and loads again, so nothing newer is ever labelled with an older version.
    const version = await deps.policies.setVersion()
    const [stored, declared, schema] = await Promise.all([
      deps.policies.list(),
      deps.policies.actions(),
      deps.policies.schema(),
    ])
    const generation = loaded ? 1 - loaded.generation : 0
    const prefix = `deputy.${instance}.${generation}`
    const policies = new Map<string, PolicyFacts>()
    const reads = new Map<string, ReadonlySet<string>>()
    for (const policy of stored) {
      policies.set(policy.id, {
        effect: policy.effect,
        description: policy.description,
        message: policy.message,
      })
      reads.set(policy.id, contextAttributesRead(policyToJson(policy.text)))
    }
    const tools = new Map(declared.map((d) => [d.id, d]))
    const actions = new Map<string, ActionSlice>()
    for (const [name, { shape, groups }] of actionShapes(schema)) {
      // A policy belongs to the slice of every action its scope names, directly or through the
      // action's group (`action in Deputy::Action::"<resource>"`).
      const names = new Set([name, ...groups])
      const slice = stored.filter((p) => p.actions === null || p.actions.some((a) => names.has(a)))
      const setId = `${prefix}.${name}`
      const tool = tools.get(name)
      const texts = Object.fromEntries(slice.map((p) => [p.id, p.text]))
      preparse(setId, texts)
      actions.set(name, {
        setId,
        schema: actionSchema(schema, name),
        texts,
        shape,
        readsArguments: new Set(
          slice.filter((p) => readsContext(reads, p, 'arguments')).map((p) => p.id),
        ),
        readsApproved: slice.some((p) => readsContext(reads, p, 'approved')),
        resource: tool?.resource ?? null,
        tool: tool?.resource ? tool.name : null,
        entities: [
          {
            uid: { type: ENTITY.action, id: name },
            attrs: {},
            parents: groups.map((id) => ({ type: ENTITY.action, id })),
          },
          ...groups.map((id) => ({ uid: { type: ENTITY.action, id }, attrs: {}, parents: [] })),
        ],
      })
    }
    return { version, generation, actions, policies, schemasReady: new Set() }
  }

  /** Loads the current version, once at a time; a failure keeps the version in force. */
  function reload(): Promise<void> {
    reloading ??= load()
      .then((next) => {
        loaded = next
        lastLoadError = undefined
        deps.logger.debug({ setVersion: next.version }, 'policy set loaded')
      })
      .catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err)
        if (!closed && message !== lastLoadError) {
          deps.logger.warn(
            { err, inForce: loaded?.version ?? null },
            'policy set could not be loaded; the version in force stays',
          )
        }
        lastLoadError = message
      })
      .finally(() => {
        reloading = undefined
      })
    return reloading
  }

  /** Reloads when the stored version moved; errors (a closed store) are logged, never thrown. */
  async function check(): Promise<void> {
    try {
      const version = await deps.policies.setVersion()
      if (loaded?.version === version) return
    } catch (err) {
      if (!closed) deps.logger.warn({ err }, 'policy-set version could not be read')
      return
    }
    await reload()
  }

  function startPolling(): void {
    if (timer || closed) return
    timer = setInterval(() => void check(), deps.refreshIntervalMs)
    // A process with nothing else to do must be free to exit.
    timer.unref()
  }

  return {
    async current() {
      if (!loaded) {
        startPolling()
        await reload()
      }
      return loaded
    },

    inForce() {
      return loaded
    },

    lastLoadError() {
      return lastLoadError
    },

    async refresh() {
      startPolling()
      await check()
    },

    close() {
      closed = true
      if (timer) clearInterval(timer)
      timer = undefined
    },
  }
}

/**
 * The schema with only one action (and its action groups): what Cedar checks a request for that
 * action against. Cedar adds every action of a schema to each request's entities, so checking
 * against the whole schema would cost more with every tool declared; per action, it costs the
 * same with one or a thousand.
 */
function actionSchema(schema: CedarSchemaJson, action: string): CedarSchema {
  const namespace = (schema[CEDAR_NAMESPACE] ?? {}) as {
    actions?: Record<string, { memberOf?: readonly { id: string }[] } | undefined>
  }
  const own = namespace.actions?.[action]
  const actions: Record<string, unknown> = { [action]: own }
  for (const group of own?.memberOf ?? []) actions[group.id] = namespace.actions?.[group.id] ?? {}
  return asCedarSchema({ [CEDAR_NAMESPACE]: { ...namespace, actions } })
}

/**
 * The context attributes each action of the schema declares, and the action groups it is in.
 * Action groups (a server's `<resource>`) apply to nothing themselves and are left out.
 */
function actionShapes(
  schema: CedarSchemaJson,
): Map<string, { shape: ContextShape; groups: readonly string[] }> {
  const namespace = schema[CEDAR_NAMESPACE] as
    | {
        actions?: Record<
          string,
          {
            appliesTo?: { context?: { attributes?: ContextShape } }
            memberOf?: readonly { id: string }[]
          }
        >
      }
    | undefined
  const shapes = new Map<string, { shape: ContextShape; groups: readonly string[] }>()
  for (const [name, action] of Object.entries(namespace?.actions ?? {})) {
    if (action.appliesTo === undefined) continue
    shapes.set(name, {
      shape: action.appliesTo.context?.attributes ?? {},
      groups: (action.memberOf ?? []).map((group) => group.id),
    })
  }
  return shapes
}

function readsContext(
  reads: ReadonlyMap<string, ReadonlySet<string>>,
  policy: StoredPolicy,
  attribute: string,
): boolean {
  const attributes = reads.get(policy.id)
  return attributes !== undefined && (attributes.has(attribute) || attributes.has('*'))
}

/**
 * The context attributes a policy's conditions read (`context.arguments` → `arguments`), or `*`
 * when it uses the context as a whole. Used to skip work no policy can notice: the second run
 * for approval, and the simulation's partial evaluation of arguments.
 */
function contextAttributesRead(policy: PolicyJson): Set<string> {
  const found = new Set<string>()
  const isContext = (node: unknown) =>
    typeof node === 'object' && node !== null && (node as { Var?: unknown }).Var === 'context'
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item)
      return
    }
    if (typeof node !== 'object' || node === null) return
    const record = node as Record<string, unknown>
    if (isContext(record)) {
      found.add('*')
      return
    }
    for (const [key, value] of Object.entries(record)) {
      if (key === 'Value') continue
      const access = value as { left?: unknown; attr?: unknown } | undefined
      if ((key === '.' || key === 'has') && access && isContext(access.left)) {
        const attr = Array.isArray(access.attr) ? access.attr[0] : access.attr
        if (typeof attr === 'string') found.add(attr)
        continue
      }
      visit(value)
    }
  }
  visit(policy.conditions)
  return found
}
