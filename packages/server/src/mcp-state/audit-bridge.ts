import type { Actor, AuditEventInput, AuditLog } from '../audit/types.js'

/**
 * One tool call as an MCP server protected by `@deputy/mcp` reports it (the kit's `ToolCallEvent`,
 * restated here so the server does not depend on the kit at build time; the kit's type is
 * assignable to it).
 */
export interface McpToolCallEvent {
  /** `tool.allowed` before the call runs, `tool.called` after, `tool.refused` before a refusal. */
  readonly type: 'tool.allowed' | 'tool.called' | 'tool.refused'
  /** One id per tool call, the same on its `tool.allowed` and `tool.called` records. */
  readonly callId?: string
  readonly at: Date
  /** The MCP server's resource indicator (`aud` of the token). */
  readonly resource: string
  /** The person (`sub`), or the agent itself for a client-credentials token. */
  readonly sub: string
  /** The agent's `client_id`. */
  readonly clientId: string | undefined
  /** RFC 8693 §4.1 `act` of the token: who acted, outermost first, when it came from an exchange. */
  readonly actor: Readonly<Record<string, unknown>> | undefined
  /** `jti` of the access token. */
  readonly tokenId: string | undefined
  readonly tool: string
  readonly argumentsDigest: string
  readonly decision: 'allow' | 'deny' | 'needs_approval' | 'insufficient_scope'
  readonly reason: string | undefined
  /** Ids of the policies that decided (Cedar `@id`s), when a policy decided. */
  readonly policies?: readonly string[]
  /** None on `tool.allowed`: it is written before the call runs. */
  readonly outcome: 'success' | 'error' | 'refused' | undefined
  /** The approval request the call waited for or ran with (`approval_requests.id`). */
  readonly approvalId?: string
}

// The audit chain's decision words (`allow`, `deny`, `needs-approval`, …), not the kit's.
const DECISIONS: Record<McpToolCallEvent['decision'], string> = {
  allow: 'allow',
  deny: 'deny',
  needs_approval: 'needs-approval',
  insufficient_scope: 'insufficient-scope',
}

/** How deep an `act` chain is followed; a token is small, a loop in a claim is not. */
const MAX_CHAIN = 10

/** RFC 8693 §4.1: `act` nests the earlier actors inside the current one; outermost first. */
function delegationChain(act: Readonly<Record<string, unknown>> | undefined): Actor[] {
  const chain: Actor[] = []
  let current: unknown = act
  while (current !== null && typeof current === 'object' && chain.length < MAX_CHAIN) {
    const claims = current as Record<string, unknown>
    const id =
      typeof claims.client_id === 'string'
        ? claims.client_id
        : typeof claims.sub === 'string'
          ? claims.sub
          : undefined
    if (id === undefined) break
    chain.push({ type: typeof claims.client_id === 'string' ? 'client' : 'agent', id })
    current = claims.act
  }
  return chain
}

/**
 * Turns a tool call into an audit event: the actor is the agent (the OAuth client), `onBehalfOf`
 * the person, the target the tool at its MCP server, with the decision, the reason of a refusal,
 * the policies that decided it, the outcome and the digest of the arguments (never the arguments:
 * they may hold an address).
 */
export function toolCallAuditEvent(event: McpToolCallEvent): AuditEventInput {
  const agent: Actor =
    event.clientId !== undefined
      ? { type: 'client', id: event.clientId }
      : { type: 'user', id: event.sub }
  // A client-credentials token names the agent as its own subject: nobody is acted for.
  const person: Actor | null =
    event.clientId !== undefined && event.sub !== event.clientId
      ? { type: 'user', id: event.sub }
      : null
  return {
    type: event.type,
    actor: agent,
    onBehalfOf: person,
    delegationChain: delegationChain(event.actor),
    target: { type: 'tool', id: `${event.resource}#${event.tool}` },
    decision: DECISIONS[event.decision],
    reason: event.reason ?? null,
    data: {
      ...(event.callId !== undefined && { callId: event.callId }),
      resource: event.resource,
      tool: event.tool,
      argumentsDigest: event.argumentsDigest,
      ...(event.outcome !== undefined && { outcome: event.outcome }),
      ...(event.policies !== undefined && { policies: [...event.policies] }),
      ...(event.approvalId !== undefined && { approvalId: event.approvalId }),
      at: event.at.toISOString(),
      ...(event.tokenId !== undefined && { jti: event.tokenId }),
    },
  }
}

/**
 * The audit hook for `protectMcpServer({ audit })`: appends every tool call to Deputy's chain. It
 * resolves once the record is committed and rejects when the append fails, so the kit refuses a
 * call whose decision could not be recorded.
 */
export function toolCallAuditor(deps: {
  audit: AuditLog
}): (event: McpToolCallEvent) => Promise<void> {
  return async (event) => {
    await deps.audit.append(toolCallAuditEvent(event))
  }
}
