import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import type { CedarEntity } from './cedar.js'
import {
  buildContext,
  ENTITY,
  type EntityDeps,
  loadSubjects,
  qualifiedType,
  relationsOf,
  resourceEntities,
  type Subjects,
  type SubjectsProblem,
} from './entities.js'
import type { PolicySetLoader } from './policy-set-loader.js'
import { READ_ACTION, toolActionId } from './schema.js'
import type { AuthorizationRequest, EntityRef, PolicyDecision, PolicyEngine } from './types.js'
import {
  contextMisfit,
  failClosed,
  invalidRequest,
  peopleOf,
  refusedFor,
  runCedar,
  sentence,
  type Verdict,
  verdictOf,
} from './verdict.js'

// One decision (issue 5 §1, §3, §5): the request's entity slice is built from Deputy's data
// (entities.ts), the request is checked against its action's schema, Cedar decides over the
// action's slice of the set in force, and the decision is phrased — and, for `authorize`,
// recorded as `policy.decided` before the caller acts on it. Everything fails closed.

/** What deciding reads: people, agents and tuples for the slice, the set in force, the chain. */
export interface DecisionDeps extends EntityDeps {
  clock: Clock
  audit: AuditLog
  set: PolicySetLoader
}

/** A decision made, before it is phrased: the verdict, the set version, who it is about. */
interface Decided {
  readonly verdict: Verdict
  readonly version: number
  /** The person's email (their `sub` when unknown). */
  readonly person: string
  /** The agent's name, when one acts and is known. */
  readonly agent?: string
}

/** Everything a decision needs that comes from the database, fetched before Cedar is asked. */
interface Prepared {
  readonly subjects: Subjects
  readonly resourceEntities: readonly CedarEntity[]
  readonly relations?: readonly string[]
}

/** The decision point's answers: decide and record, decide a tool call, decide and explain. */
export function createDecisions(
  deps: DecisionDeps,
): Pick<PolicyEngine, 'authorize' | 'authorizeToolCall' | 'explain'> {
  async function prepare(
    request: AuthorizationRequest,
    resource: EntityRef,
  ): Promise<{ ok: true; prepared: Prepared } | { ok: false; problem: SubjectsProblem }> {
    const needsRelations = request.action === READ_ACTION && request.relations === undefined
    const [who, slice, relations] = await Promise.all([
      loadSubjects(deps, { sub: request.sub, clientId: request.clientId }),
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
  async function decide(request: AuthorizationRequest): Promise<Decided> {
    const resource = { type: qualifiedType(request.resource.type), id: request.resource.id }
    const set = await deps.set.current()
    const prepared = await prepare(request, resource)
    if (!prepared.ok) {
      const { problem } = prepared
      return {
        verdict: refusedFor(problem),
        version: deps.set.inForce()?.version ?? -1,
        person: problem.person,
        ...(problem.agent === undefined ? {} : { agent: problem.agent }),
      }
    }
    const { subjects } = prepared.prepared
    const people = peopleOf(subjects)
    // From here on nothing awaits: the set read now is the one the whole decision uses.
    const inForce = deps.set.inForce() ?? set
    if (!inForce) {
      return {
        verdict: failClosed({
          kind: 'no_policy_set',
          message: deps.set.lastLoadError() ?? 'not loaded',
        }),
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
      runCedar(
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
      delegationChain: (request.chain ?? []).map((id) => ({ type: 'agent', id })),
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
        ...(call.actors === undefined ? {} : { chain: call.actors }),
      })
    },

    async explain(request) {
      return phrase(request, await decide(request))
    },
  }
}

function phrase(request: AuthorizationRequest, decided: Decided): PolicyDecision {
  const { verdict } = decided
  return {
    decision: verdict.decision,
    policies: verdict.policies,
    explanation: sentence(
      {
        person: decided.person,
        agent: decided.agent,
        action: request.action,
        resource: request.resource,
      },
      verdict.finding,
    ),
    ...(verdict.message === undefined ? {} : { message: verdict.message }),
    errors: verdict.errors,
    setVersion: decided.version,
  }
}
