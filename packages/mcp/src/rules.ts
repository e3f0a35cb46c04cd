import type { Identity } from './identity.js'
import type { UserState } from './state.js'

/** Why a policy decided as it did, when it can say: what audit records and people read. */
export interface DecisionBasis {
  /** Ids of the policies that determined the decision (Cedar `@id`s); the audit event carries them. */
  readonly policies?: readonly string[]
  /** One sentence a person can read. */
  readonly explanation?: string
}

/** A policy's answer. `needs_approval` is for the approvals flow: the tool does not run now. */
export type Decision =
  | ({ readonly decision: 'allow' } & DecisionBasis)
  | ({ readonly decision: 'deny'; readonly message?: string } & DecisionBasis)
  | ({
      readonly decision: 'needs_approval'
      readonly message?: string
      readonly details?: unknown
    } & DecisionBasis)

/** What a policy sees: the caller, the tool, the (validated) arguments and the caller's state. */
export interface PolicyContext {
  /** The MCP server's resource indicator. */
  readonly resource: string
  readonly identity: Identity
  readonly tool: string
  readonly arguments: unknown
  readonly state: UserState
}

/** A per-tool policy hook; Cedar policies plug in here through `cedarPolicy(pdp)`. */
export type ToolPolicy = (context: PolicyContext) => Decision | Promise<Decision>

/**
 * A tool call that runs only with the person's approval, asked through Deputy (CIBA) with the
 * call's exact arguments; `protectMcpServer` needs its `approvals` option for it.
 */
export interface ApprovalRule {
  /** Whether this call needs approval (e.g. a buy over a limit); default: every call. */
  readonly when?: (context: PolicyContext) => boolean | Promise<boolean>
  /**
   * CIBA `binding_message`: the short line shown to the person beside the arguments (plain text,
   * at most 100 characters); default `Run <tool>`.
   */
  readonly bindingMessage?: string | ((context: PolicyContext) => string)
}

/** The rule declared beside a tool. Every part must hold for the call to run. */
export interface ToolRule {
  /** All of these scopes; a missing one is answered `403 insufficient_scope` naming all of them. */
  readonly scopes?: readonly string[]
  /** At least one of these roles. */
  readonly roles?: readonly string[]
  /** All of these permissions. */
  readonly permissions?: readonly string[]
  readonly policy?: ToolPolicy
  /** The person's approval, asked for each call (or those `when` picks) the rest allows. */
  readonly approval?: ApprovalRule
}

/** Allow the call. */
export const allow = (): Decision => ({ decision: 'allow' })
/** Refuse the call; `message` is shown to the caller as the tool error. */
export const deny = (message?: string): Decision =>
  message === undefined ? { decision: 'deny' } : { decision: 'deny', message }
/** Hold the call until the person approves it. */
export const needsApproval = (message?: string, details?: unknown): Decision => ({
  decision: 'needs_approval',
  ...(message !== undefined && { message }),
  ...(details !== undefined && { details }),
})

/** Scopes of `required` the identity lacks. */
export function missingScopes(identity: Identity, required: readonly string[] = []): string[] {
  const granted = new Set(identity.scopes)
  return required.filter((scope) => !granted.has(scope))
}

/**
 * The static part of a rule (roles and permissions), which a tools/list can be filtered by; scopes
 * are left out because a client can still step up to them.
 */
export function staticRefusal(
  rule: ToolRule,
  identity: Identity,
): 'role' | 'permission' | undefined {
  if (rule.roles !== undefined && rule.roles.length > 0) {
    const held = new Set(identity.roles)
    if (!rule.roles.some((role) => held.has(role))) return 'role'
  }
  if (rule.permissions !== undefined) {
    const held = new Set(identity.permissions)
    if (!rule.permissions.every((permission) => held.has(permission))) return 'permission'
  }
  return undefined
}
