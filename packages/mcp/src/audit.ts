import type { Identity } from './identity.js'
import { sha256Base64url } from './sha256.js'

/** What was decided about a tool call. */
export type ToolDecision = 'allow' | 'deny' | 'needs_approval' | 'insufficient_scope'

/**
 * One tool call, as reported to the audit hook. Carries a digest of the arguments, never the
 * arguments or the token (STYLE: events carry no secrets).
 */
export interface ToolCallEvent {
  /** `tool.called` when the handler ran, `tool.refused` when it did not. */
  readonly type: 'tool.called' | 'tool.refused'
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
  /** Why a refusal happened: `scope`, `role`, `permission`, `policy`, `policy_error`, `approval`. */
  readonly reason: string | undefined
  /** Ids of the policies that decided, when the tool's policy named them (e.g. Cedar `@id`s). */
  readonly policies?: readonly string[]
  readonly outcome: 'success' | 'error' | 'refused'
}

/** Receives every tool call; Deputy's server appends these to its audit chain. */
export type AuditHook = (event: ToolCallEvent) => void | Promise<void>

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`
  }
  return JSON.stringify(value ?? null)
}

/**
 * Digest of tool arguments: equal arguments give equal digests whatever their key order, so an
 * audit reader can confirm "these were the arguments" without the log holding them.
 */
export async function argumentsDigest(args: unknown): Promise<string> {
  return `sha-256:${await sha256Base64url(canonical(args ?? {}))}`
}

/** One tool call to report: where, by whom, which tool with which arguments, and what happened. */
export interface ToolCallReport {
  at: Date
  resource: string
  identity: Identity
  tool: string
  args: unknown
  fields: Pick<ToolCallEvent, 'type' | 'decision' | 'reason' | 'outcome' | 'policies'>
}

/**
 * Builds the event for a tool call and hands it to the hook. A failing hook goes to `onError`,
 * never to the caller: a tool call's answer does not depend on the audit sink. Shared by the kit
 * and the gateway so both report the same fields.
 */
export async function reportToolCall(
  hook: AuditHook | undefined,
  onError: (error: Error) => void,
  call: ToolCallReport,
): Promise<void> {
  if (hook === undefined) return
  try {
    const { policies, ...fields } = call.fields
    await hook({
      ...fields,
      ...(policies !== undefined && { policies: [...policies] }),
      at: call.at,
      resource: call.resource,
      sub: call.identity.sub,
      clientId: call.identity.clientId,
      actor: call.identity.actor,
      tokenId: call.identity.tokenId,
      tool: call.tool,
      argumentsDigest: await argumentsDigest(call.args),
    })
  } catch (error) {
    onError(error instanceof Error ? error : new Error(String(error)))
  }
}
