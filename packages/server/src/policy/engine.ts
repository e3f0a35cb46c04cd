import type { Logger } from 'pino'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Users } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Clients } from '../oauth/clients.js'
import type { Grants } from '../oauth/grants.js'
import type { Store } from '../store/db.js'
import {
  authorizePartially,
  type CedarContext,
  type CedarEntity,
  type CedarSchema,
  authorize as cedarAuthorize,
  type PolicyJson,
  policyToJson,
  preparse,
  preparseSchema,
  unknownValue,
} from './cedar.js'
import {
  batchFacts,
  buildContext,
  type ContextShape,
  cedarTypeOfTupleType,
  documentEntities,
  ENTITY,
  type EntityDeps,
  loadSubjects,
  qualifiedType,
  relationsOf,
  resourceEntities,
  type Subjects,
  type SubjectsProblem,
  toolEntities,
} from './entities.js'
import { explainFinding, type Finding, type PolicyError, type PolicyLabel } from './explain.js'
import { asCedarSchema, fitToCedarType, misfitOf, READ_ACTION, toolActionId } from './schema.js'
import {
  type AuthorizationRequest,
  CEDAR_NAMESPACE,
  type CedarSchemaJson,
  type DecisionOutcome,
  type EntityRef,
  type Policies,
  type PolicyDecision,
  type PolicyEngine,
  type Relationships,
  type SimulatedAction,
  type StoredPolicy,
} from './types.js'

// The policy decision point (issue 5 §1, §3, §5). Each policy-set version is loaded once: the
// policies are split by the action their scope names (plus those naming none) and each slice is
// preparsed in cedar-wasm, so a decision evaluates only its action's policies whatever the size
// of the set. Each decision hands Cedar a slice of entities built for it (entities.ts), checks
// the request against its action's schema, and fails closed. Every process polls the set version
// and reloads when another process changed it.

export interface PolicyEngineDeps {
  store: Store
  clock: Clock
  audit: AuditLog
  logger: Logger
  policies: Policies
  relationships: Relationships
  users: Users
  clients: Clients
  grants: Grants
  /** How often to look for a new policy-set version (config `policyRefreshIntervalMs`). */
  refreshIntervalMs: number
}

/** What the engine knows of a policy when it explains a decision. */
interface PolicyFacts {
  readonly effect: 'permit' | 'forbid'
  readonly description: string | null
  readonly message: string | null
}

/** One action of the loaded set: its preparsed slice and what its context declares. */
interface ActionSlice {
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
interface Loaded {
  readonly version: number
  /** Which of this engine's two name sets in cedar-wasm it occupies (0 or 1). */
  readonly generation: number
  readonly actions: ReadonlyMap<string, ActionSlice>
  /** Actions whose schema is preparsed for this version. */
  readonly schemasReady: Set<string>
  readonly policies: ReadonlyMap<string, PolicyFacts>
}

/** A decision before it is phrased, with the reason the audit chain records. */
interface Verdict {
  readonly decision: DecisionOutcome
  readonly reason: string
  readonly finding: Finding
  readonly policies: readonly string[]
  readonly message?: string
  readonly errors: readonly PolicyError[]
}

/** Cedar's answer to one request, or why it gave none. */
type CedarRun =
  | {
      readonly ok: true
      readonly allow: boolean
      readonly reason: readonly string[]
      readonly errors: readonly PolicyError[]
    }
  | { readonly ok: false; readonly message: string }

/**
 * Preparsed schemas and policy sets live in cedar-wasm under names that cannot be dropped; each
 * engine uses its own number and two generations, so a process holds at most two versions per
 * engine whatever the number of reloads, and a reload never overwrites the set in force.
 */
let engines = 0

/** The Cedar decision point over the stored policies, with entity slices from Deputy's data. */
export function createPolicyEngine(deps: PolicyEngineDeps): PolicyEngine {
  const instance = ++engines
  const entityDeps: EntityDeps = deps
  let loaded: Loaded | undefined
  let lastLoadError: string | undefined
  let reloading: Promise<void> | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  let closed = false

  async function load(): Promise<Loaded> {
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

  async function current(): Promise<Loaded | undefined> {
    if (!loaded) {
      startPolling()
      await reload()
    }
    return loaded
  }

  /**
   * One Cedar run over an action's slice. With `set`, the request and the entities are checked
   * against the action's schema (a misfit is a failure, hence a deny); without, they are not
   * (the simulation, which has no arguments to give).
   */
  function run(
    set: Loaded | undefined,
    slice: ActionSlice,
    principal: EntityRef,
    action: string,
    resource: EntityRef,
    context: CedarContext,
    entities: readonly CedarEntity[],
  ): CedarRun {
    if (set && !set.schemasReady.has(action)) {
      try {
        preparseSchema(slice.setId, slice.schema)
      } catch (err) {
        return { ok: false, message: err instanceof Error ? err.message : String(err) }
      }
      set.schemasReady.add(action)
    }
    const answer = cedarAuthorize({
      principal: { type: principal.type, id: principal.id },
      action: { type: ENTITY.action, id: action },
      resource: { type: resource.type, id: resource.id },
      context,
      ...(set ? { preparsedSchemaName: slice.setId } : {}),
      validateRequest: set !== undefined,
      preparsedPolicySetId: slice.setId,
      entities: [...entities],
    })
    if (answer.type === 'failure')
      return { ok: false, message: answer.errors[0]?.message ?? 'Cedar gave no answer' }
    const { decision, diagnostics } = answer.response
    // Plain loops, no callbacks into array builtins, on this hot path: Node 20's V8 crashed
    // ("unreachable code" in Deoptimizer::DoComputeBuiltinContinuation) deoptimising a builtin
    // continuation here under the policy benchmark's load.
    const errors: { policyId: string; message: string }[] = []
    for (const e of diagnostics.errors)
      errors.push({ policyId: e.policyId, message: e.error.message })
    sortByPolicyId(errors)
    return {
      ok: true,
      allow: decision === 'allow',
      reason: [...diagnostics.reason].sort(),
      errors,
    }
  }

  /**
   * Cedar's answer made a decision: forbid overrides permit, a forbid that fails to evaluate
   * denies (fail closed), and a deny that `approved = true` would turn into an allow is
   * needs-approval.
   */
  function verdictOf(
    set: Loaded,
    slice: ActionSlice,
    approved: boolean,
    evaluate: (approved: boolean) => CedarRun,
  ): Verdict {
    const first = evaluate(approved)
    if (!first.ok) return invalidRequest(first.message)
    const failedForbids = forbidsAmong(set, first.errors)
    if (first.allow) {
      if (failedForbids.length > 0) {
        return {
          decision: 'deny',
          reason: 'policy_error',
          finding: { kind: 'policy_error', errors: failedForbids },
          policies: failedForbids.map((e) => e.policyId),
          errors: first.errors,
        }
      }
      return {
        decision: 'allow',
        reason: 'permitted',
        finding: { kind: 'permitted', policies: labels(set, first.reason) },
        policies: first.reason,
        errors: first.errors,
      }
    }
    if (!approved && slice.readsApproved && failedForbids.length === 0) {
      const second = evaluate(true)
      const secondFailed = second.ok && forbidsAmong(set, second.errors).length > 0
      if (second.ok && second.allow && !secondFailed) {
        const forbidden = first.reason.length > 0
        const policies = forbidden ? first.reason : second.reason
        const message = messageOf(set, first.reason)
        return {
          decision: 'needs_approval',
          reason: 'needs_approval',
          finding: { kind: 'needs_approval', policies: labels(set, policies), forbidden },
          policies,
          ...(message === undefined ? {} : { message }),
          errors: first.errors,
        }
      }
    }
    if (first.reason.length > 0) {
      const message = messageOf(set, first.reason)
      return {
        decision: 'deny',
        reason: 'forbidden',
        finding: { kind: 'forbidden', policies: labels(set, first.reason), message },
        policies: first.reason,
        ...(message === undefined ? {} : { message }),
        errors: first.errors,
      }
    }
    return {
      decision: 'deny',
      reason: 'not_permitted',
      finding: { kind: 'not_permitted', errors: first.errors },
      policies: [],
      errors: first.errors,
    }
  }

  /** Everything a decision needs that comes from the database, fetched before Cedar is asked. */
  interface Prepared {
    readonly subjects: Subjects
    readonly resourceEntities: readonly CedarEntity[]
    readonly relations?: readonly string[]
  }

  async function prepare(
    request: AuthorizationRequest,
    resource: EntityRef,
  ): Promise<{ ok: true; prepared: Prepared } | { ok: false; problem: SubjectsProblem }> {
    const needsRelations = request.action === READ_ACTION && request.relations === undefined
    const [who, slice, relations] = await Promise.all([
      loadSubjects(entityDeps, { sub: request.sub, clientId: request.clientId }),
      resourceEntities(deps.relationships, resource),
      needsRelations ? relationsOf(deps.relationships, resource, request.sub) : request.relations,
    ])
    if (!who.ok) return who
    return {
      ok: true,
      prepared: {
        subjects: who.subjects,
        resourceEntities: slice,
        ...(relations === undefined ? {} : { relations }),
      },
    }
  }

  /** Decides one request; the caller phrases and, for `authorize`, audits it. */
  async function decide(
    request: AuthorizationRequest,
  ): Promise<{ verdict: Verdict; version: number; person: string; agent?: string }> {
    const resource = { type: qualifiedType(request.resource.type), id: request.resource.id }
    const set = await current()
    const prepared = await prepare(request, resource)
    if (!prepared.ok) return refusedFor(prepared.problem)
    const { subjects } = prepared.prepared
    const people = { person: subjects.person.email, ...agentName(subjects) }
    // From here on nothing awaits: the set read now is the one the whole decision uses.
    const inForce = loaded ?? set
    if (!inForce) {
      return {
        verdict: failClosed({ kind: 'no_policy_set', message: lastLoadError ?? 'not loaded' }),
        version: -1,
        ...people,
      }
    }
    const slice = inForce.actions.get(request.action)
    if (!slice) {
      return {
        verdict: failClosed({ kind: 'unknown_action' }, 'unknown_action'),
        version: inForce.version,
        ...people,
      }
    }
    // The action is one tool of one server: a request naming another tool (another server's
    // of the same name above all) is refused, whatever the policies say (issue 9 §9).
    if (slice.resource !== null && slice.tool !== null) {
      const own = toolActionId(slice.resource, slice.tool)
      if (resource.type !== ENTITY.tool || resource.id !== own) {
        return {
          verdict: failClosed(
            { kind: 'wrong_resource', resource: { type: resource.type, id: resource.id } },
            'wrong_resource',
          ),
          version: inForce.version,
          ...people,
        }
      }
    }
    const misfit = contextMisfit(slice.shape, request)
    if (misfit !== undefined)
      return { verdict: invalidRequest(misfit), version: inForce.version, ...people }
    const entities = [...subjects.entities, ...prepared.prepared.resourceEntities]
    const principal = { type: ENTITY.person, id: subjects.person.id }
    const now = deps.clock.now()
    const verdict = verdictOf(inForce, slice, request.approved === true, (approved) =>
      run(
        inForce,
        slice,
        principal,
        request.action,
        resource,
        buildContext(
          slice.shape,
          { ...request, approved },
          { agentId: subjects.agent?.clientId, now, relations: prepared.prepared.relations },
        ),
        entities,
      ),
    )
    return { verdict, version: inForce.version, ...people }
  }

  function refusedFor(problem: SubjectsProblem): {
    verdict: Verdict
    version: number
    person: string
    agent?: string
  } {
    const finding: Finding =
      problem.reason === 'unknown_person'
        ? { kind: 'unknown_person', sub: problem.sub }
        : problem.reason === 'unknown_agent'
          ? { kind: 'unknown_agent', clientId: problem.clientId }
          : { kind: problem.reason }
    return {
      verdict: failClosed(finding, problem.reason),
      version: loaded?.version ?? -1,
      person: problem.person,
      ...(problem.agent === undefined ? {} : { agent: problem.agent }),
    }
  }

  function phrase(
    request: AuthorizationRequest,
    decided: { verdict: Verdict; version: number; person: string; agent?: string },
  ): PolicyDecision {
    const { verdict } = decided
    const explanation = explainFinding(
      {
        person: decided.person,
        agent: decided.agent,
        action: request.action,
        tool: toolOf(request.action),
        resource: describeResource(request.resource),
      },
      verdict.finding,
    )
    return {
      decision: verdict.decision,
      policies: verdict.policies,
      explanation,
      ...(verdict.message === undefined ? {} : { message: verdict.message }),
      errors: verdict.errors,
      setVersion: decided.version,
    }
  }

  async function authorize(request: AuthorizationRequest): Promise<PolicyDecision> {
    const decided = await decide(request)
    const decision = phrase(request, decided)
    const person: Actor = { type: 'user', id: request.sub, label: decided.person }
    const resource = { type: qualifiedType(request.resource.type), id: request.resource.id }
    await deps.audit.append({
      type: 'policy.decided',
      actor:
        request.clientId === undefined
          ? person
          : {
              type: 'agent',
              id: request.clientId,
              ...(decided.agent === undefined ? {} : { label: decided.agent }),
            },
      onBehalfOf: request.clientId === undefined ? null : person,
      target: resource,
      // The chain's decision words are hyphenated (`needs-approval`), as tool-call events are.
      decision: decision.decision === 'needs_approval' ? 'needs-approval' : decision.decision,
      reason: decided.verdict.reason,
      requestId: request.requestId ?? null,
      data: {
        policies: decision.policies,
        set_version: decision.setVersion,
        action: request.action,
        resource: resource.id,
        explanation: decision.explanation,
        errors: decision.errors,
      },
    })
    return decision
  }

  return {
    authorize,

    authorizeToolCall(call) {
      return authorize({
        sub: call.sub,
        ...(call.clientId === undefined ? {} : { clientId: call.clientId }),
        action: toolActionId(call.resource, call.tool),
        resource: { type: ENTITY.tool, id: toolActionId(call.resource, call.tool) },
        scopes: call.scopes,
        arguments: call.arguments,
        state: call.state,
        ...(call.approved === undefined ? {} : { approved: call.approved }),
      })
    },

    async explain(request) {
      return phrase(request, await decide(request))
    },

    async simulate(query) {
      const set = await current()
      const who = await loadSubjects(entityDeps, query)
      // Tools only: `read` needs a document, which retrieval (filterReadable) names.
      const declared = (await deps.policies.actions()).filter(
        (a): a is typeof a & { resource: string } => a.resource !== null,
      )
      if (!who.ok) {
        const refused = refusedFor(who.problem)
        return declared.map((action) =>
          simulated(action.id, action.resource, refused.verdict, refused),
        )
      }
      const { subjects } = who
      const people = { person: subjects.person.email, ...agentName(subjects) }
      const rows: SimulatedAction[] = []
      for (const action of declared) {
        const [scopes, state] = await Promise.all([
          query.clientId === undefined
            ? []
            : deps.grants.consentedScopes(query.sub, query.clientId, action.resource),
          personState(action.resource, query.sub),
        ])
        const inForce = loaded ?? set
        const slice = inForce?.actions.get(action.id)
        if (!inForce || !slice) {
          const finding: Finding = inForce
            ? { kind: 'unknown_action' }
            : { kind: 'no_policy_set', message: lastLoadError ?? 'not loaded' }
          rows.push(simulated(action.id, action.resource, failClosed(finding), people))
          continue
        }
        const misfit = slice.shape.state ? misfitOf(slice.shape.state, state, STATE) : undefined
        if (misfit !== undefined) {
          rows.push(simulated(action.id, action.resource, invalidRequest(misfit), people))
          continue
        }
        const resource = { type: ENTITY.tool, id: action.id }
        // Without the schema, Cedar knows the action's group only from the entities.
        const entities = [...subjects.entities, ...toolEntities(resource.id), ...slice.entities]
        const principal = { type: ENTITY.person, id: subjects.person.id }
        const now = deps.clock.now()
        const contextFor = (approved: boolean, args: CedarContext[string]): CedarContext => ({
          ...buildContext(
            slice.shape,
            { scopes, state: fitState(slice.shape, state), approved },
            { agentId: subjects.agent?.clientId, now },
          ),
          ...(slice.shape.arguments ? { arguments: args } : {}),
        })
        const dependsOn = argumentDependence(slice, (approved) => ({
          principal,
          action: { type: ENTITY.action, id: action.id },
          resource,
          context: contextFor(approved, unknownValue('arguments')),
          entities,
        }))
        if (dependsOn.length > 0) {
          rows.push({
            action: action.id,
            resource: action.resource,
            decision: 'depends_on_arguments',
            policies: dependsOn,
            explanation: explainFinding(
              { ...people, action: action.id, tool: toolOf(action.id) },
              { kind: 'depends_on_arguments', policies: labels(inForce, dependsOn) },
            ),
          })
          continue
        }
        // Arguments play no part here; the request is checked without the schema, which would
        // want the required arguments the simulation does not have.
        const verdict = verdictOf(inForce, slice, false, (approved) =>
          run(undefined, slice, principal, action.id, resource, contextFor(approved, {}), entities),
        )
        rows.push(simulated(action.id, action.resource, verdict, people))
      }
      return rows
    },

    async filterReadable(query) {
      const relation = query.relation ?? 'viewer'
      const cedarType = cedarTypeOfTupleType(query.type)
      if (cedarType === undefined) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `type must be doc or folder (the types Cedar's read action applies to), not "${query.type}"`,
        )
      }
      const set = await current()
      const who = await loadSubjects(entityDeps, query)
      const related = who.ok
        ? await deps.relationships.filter({
            subject: { type: 'user', id: query.sub },
            relation,
            type: query.type,
            objects: query.objects,
          })
        : []
      const readable: string[] = []
      let version = loaded?.version ?? -1
      if (who.ok && related.length > 0) {
        const { subjects } = who
        const facts = await batchFacts(deps.store, {
          type: query.type,
          objects: related,
          subjects: subjects.expansion,
        })
        const inForce = loaded ?? set
        const slice = inForce?.actions.get(READ_ACTION)
        if (inForce && slice) {
          version = inForce.version
          const principal = { type: ENTITY.person, id: subjects.person.id }
          const now = deps.clock.now()
          for (const id of related) {
            const fact = facts.get(id) ?? { relations: [], ancestors: [] }
            const resource = { type: cedarType, id }
            const entities = [...subjects.entities, ...documentEntities(resource, fact.ancestors)]
            const verdict = verdictOf(inForce, slice, false, (approved) =>
              run(
                inForce,
                slice,
                principal,
                READ_ACTION,
                resource,
                buildContext(
                  slice.shape,
                  { approved },
                  { agentId: subjects.agent?.clientId, now, relations: fact.relations },
                ),
                entities,
              ),
            )
            // Needs-approval is not readable: retrieval cannot stop to ask.
            if (verdict.decision === 'allow') readable.push(id)
          }
        }
      }
      const person: Actor = {
        type: 'user',
        id: query.sub,
        ...(who.ok ? { label: who.subjects.person.email } : {}),
      }
      await deps.audit.append({
        type: 'policy.filtered',
        actor: query.clientId === undefined ? person : { type: 'agent', id: query.clientId },
        onBehalfOf: query.clientId === undefined ? null : person,
        target: null,
        decision: null,
        reason: who.ok ? null : who.problem.reason,
        data: {
          action: READ_ACTION,
          type: query.type,
          relation,
          candidates: query.objects.length,
          related: related.length,
          readable: readable.length,
          set_version: version,
        },
      })
      return readable
    },

    async refresh() {
      startPolling()
      await check()
    },

    loadedVersion() {
      return loaded?.version ?? -1
    },

    close() {
      closed = true
      if (timer) clearInterval(timer)
      timer = undefined
    },
  }

  /** The person's stored MCP state for a server (`mcp_user_state`), as JSON values. */
  async function personState(resource: string, sub: string): Promise<Record<string, unknown>> {
    const rows = await deps.store.db
      .selectFrom('mcp_user_state')
      .select(['key', 'value'])
      .where('resource', '=', resource)
      .where('sub', '=', sub)
      .execute()
    const state: Record<string, unknown> = {}
    for (const row of rows) {
      try {
        state[row.key] = JSON.parse(row.value)
      } catch {
        // A value that is not JSON is no value at all: left out, as if never stored.
      }
    }
    return state
  }
}

/**
 * Why a request's arguments or state do not fit what the action declares, or undefined. Checked
 * before Cedar is asked: a value of the wrong type is refused, never left out (issue 9 §4).
 */
function contextMisfit(
  shape: ContextShape,
  request: Pick<AuthorizationRequest, 'arguments' | 'state'>,
): string | undefined {
  if (shape.arguments) {
    const found = misfitOf(shape.arguments, request.arguments ?? {}, ARGUMENTS)
    if (found !== undefined) return found
  }
  if (shape.state) return misfitOf(shape.state, request.state ?? {}, STATE)
  return undefined
}

const ARGUMENTS = { whole: 'the arguments', part: 'argument' } as const
const STATE = { whole: "the person's state", part: 'state' } as const

/** Only the declared state keys, shaped to their types (what does not fit is left out). */
function fitState(shape: ContextShape, state: Record<string, unknown>): Record<string, unknown> {
  if (!shape.state) return {}
  return (fitToCedarType(shape.state, state) ?? {}) as Record<string, unknown>
}

/**
 * The policies that make a simulated decision depend on the tool's arguments: with the arguments
 * unknown, Cedar's partial evaluation leaves the decision open and a policy still open reads
 * them. Cedar keeps any policy that touches the context open once part of it is unknown, hence
 * the second condition. Checked with and, when it matters, without approval.
 */
function argumentDependence(
  slice: ActionSlice,
  request: (approved: boolean) => {
    principal: EntityRef
    action: EntityRef
    resource: EntityRef
    context: CedarContext
    entities: readonly CedarEntity[]
  },
): string[] {
  if (slice.readsArguments.size === 0) return []
  const open = (approved: boolean): string[] => {
    const r = request(approved)
    const answer = authorizePartially({
      principal: r.principal,
      action: r.action,
      resource: r.resource,
      context: r.context,
      entities: [...r.entities],
      policies: { staticPolicies: { ...slice.texts } },
      validateRequest: false,
    })
    // A request Cedar cannot even partially evaluate is decided (and explained) by the full run.
    if (answer.type !== 'residuals' || answer.response.decision !== null) return []
    return answer.response.nontrivialResiduals.filter((id) => slice.readsArguments.has(id)).sort()
  }
  const withoutApproval = open(false)
  if (withoutApproval.length > 0 || !slice.readsApproved) return withoutApproval
  return open(true)
}

function simulated(
  action: string,
  resource: string | null,
  verdict: Verdict,
  people: { person: string; agent?: string | undefined },
): SimulatedAction {
  return {
    action,
    resource,
    decision: verdict.decision,
    policies: verdict.policies,
    explanation: explainFinding({ ...people, action, tool: toolOf(action) }, verdict.finding),
  }
}

/**
 * The server and tool of a tool's action id (`<resource>#<tool>`), for sentences; undefined for
 * Deputy's own actions. RFC 8707 §2: a resource indicator has no fragment, so the last `#` cuts.
 */
function toolOf(action: string): { name: string; server: string } | undefined {
  const cut = action.lastIndexOf('#')
  if (cut <= 0 || cut === action.length - 1) return undefined
  return { server: action.slice(0, cut), name: action.slice(cut + 1) }
}

function failClosed(finding: Finding, reason: string = finding.kind): Verdict {
  return { decision: 'deny', reason, finding, policies: [], errors: [] }
}

function invalidRequest(message: string): Verdict {
  return {
    decision: 'deny',
    reason: 'policy_error',
    finding: { kind: 'invalid_request', message },
    policies: [],
    errors: [],
  }
}

function agentName(subjects: Subjects): { agent?: string } {
  return subjects.agent ? { agent: subjects.agent.name } : {}
}

/** The policies of a decision with their descriptions, as the sentence names them. */
function labels(set: Loaded, ids: readonly string[]): PolicyLabel[] {
  const found: PolicyLabel[] = []
  for (const id of ids) found.push({ id, description: set.policies.get(id)?.description ?? null })
  return found
}

/** The errors that belong to forbid policies (a failing forbid denies). */
function forbidsAmong<E extends { policyId: string }>(set: Loaded, errors: readonly E[]): E[] {
  const found: E[] = []
  for (const e of errors) if (set.policies.get(e.policyId)?.effect === 'forbid') found.push(e)
  return found
}

/** Insertion sort by policy id: the lists are a handful long (see `run` for why no comparator). */
function sortByPolicyId(items: { policyId: string }[]): void {
  for (let i = 1; i < items.length; i++) {
    const item = items[i] as { policyId: string }
    let j = i - 1
    while (j >= 0 && compare((items[j] as { policyId: string }).policyId, item.policyId) > 0) {
      items[j + 1] = items[j] as { policyId: string }
      j--
    }
    items[j + 1] = item
  }
}

/** The refusal text of the first deciding forbid that has one. */
function messageOf(set: Loaded, ids: readonly string[]): string | undefined {
  for (const id of ids) {
    const facts = set.policies.get(id)
    if (facts?.effect === 'forbid' && facts.message) return facts.message
  }
  return undefined
}

/** `document "readme"`, `folder "x"`; undefined for a tool (the action names it). */
function describeResource(resource: EntityRef): string | undefined {
  const type = qualifiedType(resource.type)
  if (type === ENTITY.tool) return undefined
  const name = type.slice(type.lastIndexOf(':') + 1).toLowerCase()
  return `${name} "${resource.id}"`
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

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
