import {
  type CedarContext,
  type CedarEntity,
  authorize as cedarAuthorize,
  preparseSchema,
} from './cedar.js'
import {
  type ContextShape,
  ENTITY,
  qualifiedType,
  type Subjects,
  type SubjectsProblem,
} from './entities.js'
import { explainFinding, type Finding, type PolicyError, type PolicyLabel } from './explain.js'
import type { ActionSlice, LoadedSet } from './policy-set-loader.js'
import { fitToCedarType, misfitOf } from './schema.js'
import type { AuthorizationRequest, DecisionOutcome, EntityRef } from './types.js'

// From Cedar's answer to a decision (issue 5 §1, §3, §4): one run over an action's slice, the rules
// that turn runs into allow, deny or needs-approval (forbid overrides permit, fail closed), and the
// sentence that explains it. Plain functions over the loaded set, shared by the decisions, the
// simulation and retrieval.

/** A decision before it is phrased, with the reason the audit chain records. */
export interface Verdict {
  readonly decision: DecisionOutcome
  readonly reason: string
  readonly finding: Finding
  readonly policies: readonly string[]
  readonly message?: string
  readonly errors: readonly PolicyError[]
}

/** Cedar's answer to one request, or why it gave none. */
export type CedarRun =
  | {
      readonly ok: true
      readonly allow: boolean
      readonly reason: readonly string[]
      readonly errors: readonly PolicyError[]
    }
  | { readonly ok: false; readonly message: string }

/**
 * One Cedar run over an action's slice. With `set`, the request and the entities are checked
 * against the action's schema (a misfit is a failure, hence a deny); without, they are not
 * (the simulation, which has no arguments to give).
 */
export function runCedar(
  set: LoadedSet | undefined,
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
export function verdictOf(
  set: LoadedSet,
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

/** A deny decided before Cedar is asked; the audit reason is the finding's kind unless given. */
export function failClosed(finding: Finding, reason: string = finding.kind): Verdict {
  return { decision: 'deny', reason, finding, policies: [], errors: [] }
}

/** A deny for a request that does not fit the schema: a policy error in the audit chain. */
export function invalidRequest(message: string): Verdict {
  return {
    decision: 'deny',
    reason: 'policy_error',
    finding: { kind: 'invalid_request', message },
    policies: [],
    errors: [],
  }
}

/** The deny for a request with nobody to decide for (unknown or disabled person or agent). */
export function refusedFor(problem: SubjectsProblem): Verdict {
  const finding: Finding =
    problem.reason === 'unknown_person'
      ? { kind: 'unknown_person', sub: problem.sub }
      : problem.reason === 'unknown_agent'
        ? { kind: 'unknown_agent', clientId: problem.clientId }
        : { kind: problem.reason }
  return failClosed(finding, problem.reason)
}

/**
 * Why a request's arguments or state do not fit what the action declares, or undefined. Checked
 * before Cedar is asked: a value of the wrong type is refused, never left out (issue 9 §4).
 */
export function contextMisfit(
  shape: ContextShape,
  request: Pick<AuthorizationRequest, 'arguments' | 'state'>,
): string | undefined {
  if (shape.arguments) {
    const found = misfitOf(shape.arguments, request.arguments ?? {}, ARGUMENTS)
    if (found !== undefined) return found
  }
  return stateMisfit(shape, request.state ?? {})
}

/** Why the person's state does not fit what the action declares, or undefined. */
export function stateMisfit(
  shape: ContextShape,
  state: Record<string, unknown>,
): string | undefined {
  return shape.state ? misfitOf(shape.state, state, STATE) : undefined
}

const ARGUMENTS = { whole: 'the arguments', part: 'argument' } as const
const STATE = { whole: "the person's state", part: 'state' } as const

/** Only the declared state keys, shaped to their types (what does not fit is left out). */
export function fitState(
  shape: ContextShape,
  state: Record<string, unknown>,
): Record<string, unknown> {
  if (!shape.state) return {}
  return (fitToCedarType(shape.state, state) ?? {}) as Record<string, unknown>
}

/**
 * The sentence of a finding: who asked, through which agent, to do what (on `resource`, when it
 * is not the action's own tool).
 */
export function sentence(
  asked: {
    readonly person: string
    readonly agent?: string | undefined
    readonly action: string
    readonly resource?: EntityRef
  },
  finding: Finding,
): string {
  return explainFinding(
    {
      person: asked.person,
      agent: asked.agent,
      action: asked.action,
      tool: toolOf(asked.action),
      resource: asked.resource === undefined ? undefined : describeResource(asked.resource),
    },
    finding,
  )
}

/** Who a sentence names: the person's email and, when an agent acts, the agent's name. */
export function peopleOf(subjects: Subjects): { person: string; agent?: string } {
  return {
    person: subjects.person.email,
    ...(subjects.agent ? { agent: subjects.agent.name } : {}),
  }
}

/** The policies of a decision with their descriptions, as the sentence names them. */
export function labels(set: LoadedSet, ids: readonly string[]): PolicyLabel[] {
  const found: PolicyLabel[] = []
  for (const id of ids) found.push({ id, description: set.policies.get(id)?.description ?? null })
  return found
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

/** `document "readme"`, `folder "x"`; undefined for a tool (the action names it). */
function describeResource(resource: EntityRef): string | undefined {
  const type = qualifiedType(resource.type)
  if (type === ENTITY.tool) return undefined
  const name = type.slice(type.lastIndexOf(':') + 1).toLowerCase()
  return `${name} "${resource.id}"`
}

/** The errors that belong to forbid policies (a failing forbid denies). */
function forbidsAmong<E extends { policyId: string }>(set: LoadedSet, errors: readonly E[]): E[] {
  const found: E[] = []
  for (const e of errors) if (set.policies.get(e.policyId)?.effect === 'forbid') found.push(e)
  return found
}

/** Insertion sort by policy id: the lists are a handful long (see `runCedar` for why no comparator). */
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
function messageOf(set: LoadedSet, ids: readonly string[]): string | undefined {
  for (const id of ids) {
    const facts = set.policies.get(id)
    if (facts?.effect === 'forbid' && facts.message) return facts.message
  }
  return undefined
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
