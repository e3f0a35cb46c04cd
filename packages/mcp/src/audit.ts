import type { Identity } from './identity.js'
import { sha256Base64url } from './sha256.js'

/** What was decided about a tool call. */
export type ToolDecision = 'allow' | 'deny' | 'needs_approval' | 'insufficient_scope'

/**
 * What a tool call's records say, in the order they are written. A call is recorded as decided
 * before anything acts on the decision: `tool.allowed` before the handler runs (or the gateway
 * forwards it), `tool.refused` before the refusal is answered; `tool.called` follows an allowed
 * call once its outcome is known.
 */
export type ToolCallEventType = 'tool.allowed' | 'tool.called' | 'tool.refused'

/**
 * What a failing audit hook means for the call whose decision it was recording: `refuse` (the
 * default: no action without its record) or `continue` (log the failure to `onError` and run).
 */
export type AuditFailure = 'refuse' | 'continue'

/**
 * One tool call, as reported to the audit hook. Carries a digest of the arguments, never the
 * arguments or the token (STYLE: events carry no secrets).
 */
export interface ToolCallEvent {
  /** See {@link ToolCallEventType}. */
  readonly type: ToolCallEventType
  /** One id per tool call, the same on its `tool.allowed` and its `tool.called` record. */
  readonly callId: string
  readonly at: Date
  readonly resource: string
  /** The person. */
  readonly sub: string
  /** The agent acting for them. */
  readonly clientId: string | undefined
  /** RFC 8693 `act` chain when the token came from a token exchange. */
  readonly actor: Readonly<Record<string, unknown>> | undefined
  /** `jti` of the access token, to join with the authorization server's records. */
  readonly tokenId: string | undefined
  readonly tool: string
  /** `sha-256:` + base64url of the SHA-256 of the arguments' canonical JSON (sorted keys). */
  readonly argumentsDigest: string
  readonly decision: ToolDecision
  /**
   * Why a refusal happened: `scope`, `role`, `permission`, `policy`, `policy_error`, `approval`
   * (needed, but the kit has no `approvals` option), `approval_pending`, `approval_denied`,
   * `approval_expired`, `approval_mismatch` (the approval's token was not for this call),
   * `approval_used`, `approval_error` (Deputy could not be asked).
   */
  readonly reason: string | undefined
  /** Ids of the policies that decided, when the tool's policy named them (e.g. Cedar `@id`s). */
  readonly policies?: readonly string[]
  /**
   * The approval request (Deputy's approval id) the call waited for or ran with: on the
   * `tool.allowed` and `tool.called` of an approved call, and on its pending, declined or
   * expired `tool.refused`.
   */
  readonly approvalId?: string
  /**
   * `success` or `error` on `tool.called`, `refused` on `tool.refused`; none on `tool.allowed`,
   * which is written before the outcome exists.
   */
  readonly outcome: 'success' | 'error' | 'refused' | undefined
}

/**
 * Receives every record of every tool call; Deputy's server appends them to its audit chain. The
 * call waits for it, and a hook that throws (or rejects) has not recorded: the decision it was
 * given is not acted on (see {@link AuditFailure}).
 */
export type AuditHook = (event: ToolCallEvent) => void | Promise<void>

/** JSON with object keys sorted (undefined members left out): equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`
  }
  return JSON.stringify(value ?? null)
}

/**
 * Digest of tool arguments: equal arguments give equal digests whatever their key order, so an
 * audit reader can confirm "these were the arguments" without the log holding them.
 */
export async function argumentsDigest(args: unknown): Promise<string> {
  return `sha-256:${await sha256Base64url(canonicalJson(args ?? {}))}`
}

/** One tool call to report: where, by whom, which tool with which arguments, and what happened. */
export interface ToolCallReport {
  /** The call's id, shared by all its records. */
  callId: string
  at: Date
  resource: string
  identity: Identity
  tool: string
  args: unknown
  /**
   * The digest of `args` when the caller has it already (a call's records share it); computed
   * from `args` otherwise.
   */
  argumentsDigest?: string | Promise<string>
  fields: Pick<
    ToolCallEvent,
    'type' | 'decision' | 'reason' | 'outcome' | 'policies' | 'approvalId'
  >
}

/**
 * Builds the event for a tool call, hands it to the hook and waits for it. Resolves `true` once
 * the hook took the event (or there is no hook), `false` when it failed: the error goes to
 * `onError`, and what follows is the caller's choice (see {@link AuditFailure}), never a thrown
 * error. Shared by the kit and the gateway so both report the same fields.
 */
export async function reportToolCall(
  hook: AuditHook | undefined,
  onError: (error: Error) => void,
  call: ToolCallReport,
): Promise<boolean> {
  if (hook === undefined) return true
  try {
    // Built member by member (no spreads or rest objects): this runs twice for every call.
    const fields = call.fields
    const event: {
      -readonly [K in keyof ToolCallEvent]: ToolCallEvent[K]
    } = {
      type: fields.type,
      decision: fields.decision,
      reason: fields.reason,
      outcome: fields.outcome,
      callId: call.callId,
      at: call.at,
      resource: call.resource,
      sub: call.identity.sub,
      clientId: call.identity.clientId,
      actor: call.identity.actor,
      tokenId: call.identity.tokenId,
      tool: call.tool,
      argumentsDigest: await (call.argumentsDigest ?? argumentsDigest(call.args)),
    }
    if (fields.policies !== undefined) event.policies = [...fields.policies]
    if (fields.approvalId !== undefined) event.approvalId = fields.approvalId
    await hook(event)
    return true
  } catch (error) {
    onError(error instanceof Error ? error : new Error(String(error)))
    return false
  }
}

/** A fresh id for one tool call's records. */
export function newCallId(): string {
  return globalThis.crypto.randomUUID()
}
