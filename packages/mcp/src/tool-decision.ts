import type { ToolDecision } from './audit.js'
import type { Identity } from './identity.js'
import { missingScopes, type PolicyContext, staticRefusal, type ToolRule } from './rules.js'
import type { UserState } from './state.js'

/** A call the rule refuses: what the audit record says and the one line the caller reads. */
export interface Refusal {
  readonly decision: Exclude<ToolDecision, 'allow'>
  readonly reason: string
  readonly message: string
  /** The policies that decided, when the tool's policy named them. */
  readonly policies?: readonly string[]
}

/** A call the rule lets through, with the policies that allowed it when there were any. */
export interface Allowed {
  readonly decision: 'allow'
  readonly policies?: readonly string[]
}

/** One tool call as its rule is evaluated on it. */
export interface ToolCallFacts {
  /** The MCP server's resource indicator. */
  readonly resource: string
  readonly tool: string
  readonly identity: Identity
  /** The arguments as the input schema parsed them: what the handler would get. */
  readonly args: unknown
  readonly state: UserState
}

/**
 * Evaluates a tool's rule on one call, in order: scopes, roles, permissions, the policy, then
 * whether the call needs the person's approval. A policy (or `approval.when`) that throws or
 * answers nothing usable refuses (fail closed), told to `onError`.
 */
export async function decideToolCall(
  rule: ToolRule,
  call: ToolCallFacts,
  onError: (error: Error) => void,
): Promise<Refusal | Allowed> {
  const name = call.tool
  const { identity } = call
  // Normally answered earlier with a 403 by the scope challenge; checked again so a handler
  // never runs short of scope, whatever path the request took.
  if (missingScopes(identity, rule.scopes).length > 0) {
    return {
      decision: 'insufficient_scope',
      reason: 'scope',
      message: `Calling ${name} needs the scopes: ${(rule.scopes ?? []).join(' ')}.`,
    }
  }
  const refusal = staticRefusal(rule, identity)
  if (refusal === 'role') {
    return {
      decision: 'deny',
      reason: 'role',
      message: `You do not have a role that may call ${name}.`,
    }
  }
  if (refusal === 'permission') {
    return {
      decision: 'deny',
      reason: 'permission',
      message: `You do not have permission to call ${name}.`,
    }
  }
  const policy =
    rule.policy === undefined
      ? { decision: 'allow' as const }
      : await decidePolicy(rule, call, onError)
  if (policy.decision !== 'allow' || rule.approval === undefined) return policy
  let needed: boolean
  try {
    needed =
      rule.approval.when === undefined || (await rule.approval.when(policyContext(call))) === true
  } catch (error) {
    // Whether approval is needed is not known: refused, like a broken policy.
    onError(error instanceof Error ? error : new Error(String(error)))
    return {
      decision: 'deny',
      reason: 'policy_error',
      message: `This call to ${name} was refused.`,
    }
  }
  if (!needed) return policy
  return {
    decision: 'needs_approval',
    reason: 'approval',
    message: `This call to ${name} needs the approval of the person you act for.`,
    ...(policy.policies !== undefined && { policies: policy.policies }),
  }
}

function policyContext(call: ToolCallFacts): PolicyContext {
  return {
    resource: call.resource,
    identity: call.identity,
    tool: call.tool,
    arguments: call.args,
    state: call.state,
  }
}

/** The rule's policy on one call; fails closed. */
async function decidePolicy(
  rule: ToolRule,
  call: ToolCallFacts,
  onError: (error: Error) => void,
): Promise<Refusal | Allowed> {
  const name = call.tool
  if (rule.policy === undefined) return { decision: 'allow' }
  let decision: Awaited<ReturnType<NonNullable<ToolRule['policy']>>>
  try {
    decision = await rule.policy(policyContext(call))
  } catch (error) {
    // A broken policy refuses (fail closed) without telling the caller why.
    onError(error instanceof Error ? error : new Error(String(error)))
    return {
      decision: 'deny',
      reason: 'policy_error',
      message: `This call to ${name} was refused.`,
    }
  }
  // Only what is plainly a list of ids reaches the audit event.
  const policies = Array.isArray(decision?.policies)
    ? { policies: decision.policies.filter((id): id is string => typeof id === 'string') }
    : {}
  switch (decision?.decision) {
    case 'allow':
      return { decision: 'allow', ...policies }
    case 'deny':
      return {
        decision: 'deny',
        reason: 'policy',
        message: decision.message ?? `This call to ${name} was refused by policy.`,
        ...policies,
      }
    case 'needs_approval':
      // The person's approval is asked for when the kit has `approvals`; otherwise refused.
      return {
        decision: 'needs_approval',
        reason: 'approval',
        message:
          decision.message ?? `This call to ${name} needs the approval of the person you act for.`,
        ...policies,
      }
    default:
      onError(new Error(`policy of ${name} returned no decision`))
      return {
        decision: 'deny',
        reason: 'policy_error',
        message: `This call to ${name} was refused.`,
      }
  }
}
