import { argumentsDigest, canonicalJson } from '../audit.js'
import type { Identity } from '../identity.js'
import type { JsonValue, UserState } from '../state.js'
import type { AccessTokenVerifier } from '../verify/types.js'
import type { BackchannelStarted, CibaClient } from './ciba-client.js'

// A tool call held for the person's approval (issue 11 §5): a CIBA request to Deputy carrying a
// `tool_call` authorization detail with exactly the call's arguments; the call waits for a while,
// then answers that it is pending, and a later identical call (on any replica: the pending
// request is kept in the person's durable state) picks the approval up. The token the approval
// yields is checked to be for exactly this call before anything runs, and is used once.

/** The `tool_call` authorization detail of Deputy (approvals/detail-types.ts). */
export interface ToolCallDetail {
  readonly type: 'tool_call'
  /** The MCP server's resource indicator. */
  readonly server: string
  readonly tool: string
  readonly arguments: Record<string, unknown>
}

/** A pending request, as kept in the person's state so any replica finds it. */
interface PendingApproval {
  /** Only usable with this MCP server's client credentials (CIBA binds it to its client). */
  readonly authReqId: string
  readonly approvalId: string | null
  readonly approvalUri: string | null
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
  /** Seconds between polls (CIBA §7.3), grown by `slow_down`. */
  readonly interval: number
  /** When the token endpoint may be polled next (ms): shared, so replicas do not poll too fast. */
  readonly nextPollAt: number
}

/** Where an approval wait stands when the call answers. */
export type ApprovalOutcome =
  /** Approved, and the token names exactly this call: run it, once. */
  | { readonly status: 'approved'; readonly approvalId: string }
  | {
      readonly status: 'pending'
      readonly approvalId: string | undefined
      readonly approvalUri: string | undefined
      readonly expiresAt: Date
    }
  | { readonly status: 'denied'; readonly approvalId: string | undefined }
  | { readonly status: 'expired'; readonly approvalId: string | undefined }
  /** The approval's token does not name exactly this call (or this person): refused. */
  | { readonly status: 'mismatch'; readonly approvalId: string | undefined }
  /** Used already (another identical call ran with it): a new call asks again. */
  | { readonly status: 'used'; readonly approvalId: string | undefined }

/** What the approval flow needs. */
export interface ToolApprovalDeps {
  /** This MCP server's resource indicator: the detail's `server`, the token's `aud`. */
  readonly resource: string
  readonly ciba: CibaClient
  /** The CIBA client's id: the approval's token must have been issued to it. */
  readonly clientId: string
  /** Checks the approval's access token as any other token of this resource. */
  readonly verifier: AccessTokenVerifier
  /** How long a call waits for the decision, in seconds. */
  readonly waitSeconds: number
  /** CIBA `requested_expiry`, in seconds; Deputy's default when undefined. */
  readonly expirySeconds: number | undefined
  /** Scope of the CIBA request (`openid` and any others). */
  readonly scope: string
  readonly now: () => number
}

/** One call waiting for approval. */
export interface ApprovalCall {
  readonly identity: Identity
  readonly state: UserState
  readonly tool: string
  readonly args: Record<string, unknown>
  readonly bindingMessage: string
  /** Told at each poll while waiting (MCP progress notifications). */
  readonly onWaiting: (elapsedSeconds: number) => Promise<void>
  readonly signal: AbortSignal
}

/** The state keys the kit keeps pending approvals under; tools should not use this prefix. */
export const APPROVAL_STATE_PREFIX = '@deputy/approval:'

/** The detail a call is approved by: the server, the tool and exactly its arguments. */
export function toolCallDetail(
  resource: string,
  tool: string,
  args: Record<string, unknown>,
): ToolCallDetail {
  return { type: 'tool_call', server: resource, tool, arguments: args }
}

/** CIBA `login_hint` for the caller: Auth0's iss_sub form when the token names its issuer. */
function loginHint(identity: Identity): string {
  return identity.issuer === undefined
    ? identity.sub
    : JSON.stringify({ format: 'iss_sub', iss: identity.issuer, sub: identity.sub })
}

function isPending(value: JsonValue | undefined): value is PendingApproval & JsonValue {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof value.authReqId === 'string' &&
    typeof value.expiresAt === 'number' &&
    typeof value.interval === 'number' &&
    typeof value.nextPollAt === 'number'
  )
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * Gets the person's approval for one call: finds the pending request of an identical earlier
 * call or starts one, waits up to `waitSeconds` for the decision, and checks the token it yields.
 */
export async function awaitApproval(
  deps: ToolApprovalDeps,
  call: ApprovalCall,
): Promise<ApprovalOutcome> {
  const detail = toolCallDetail(deps.resource, call.tool, call.args)
  // Which call waits for which approval: the person, the tool and the canonical arguments.
  const key = `${APPROVAL_STATE_PREFIX}${await argumentsDigest({
    sub: call.identity.sub,
    tool: call.tool,
    arguments: call.args,
  })}`
  const stored = await call.state.get(key)
  let pending: PendingApproval
  if (isPending(stored) && stored.expiresAt > deps.now()) pending = stored
  else {
    // The expiry is counted from before the ask: never later than Deputy's own.
    const askedAt = deps.now()
    const started: BackchannelStarted = await deps.ciba.start({
      loginHint: loginHint(call.identity),
      bindingMessage: call.bindingMessage,
      authorizationDetails: [detail as unknown as Record<string, unknown>],
      resource: deps.resource,
      scope: deps.scope,
      ...(deps.expirySeconds !== undefined && { requestedExpiry: deps.expirySeconds }),
    })
    const mine: PendingApproval = {
      authReqId: started.authReqId,
      approvalId: started.approvalId ?? null,
      approvalUri: started.approvalUri ?? null,
      expiresAt: askedAt + started.expiresIn * 1000,
      interval: started.interval,
      // Nobody has decided a request made a moment ago: the first poll waits an interval.
      nextPollAt: deps.now() + started.interval * 1000,
    }
    // An identical call that started its own request meanwhile keeps it: one request per call.
    const kept = await call.state.update(key, (current) =>
      isPending(current) && current.expiresAt > deps.now()
        ? current
        : (mine as unknown as JsonValue),
    )
    pending = isPending(kept) ? kept : mine
  }
  const approvalId = pending.approvalId ?? undefined
  const forget = () =>
    call.state.update(key, (current) =>
      isPending(current) && current.authReqId === pending.authReqId ? undefined : current,
    )

  const startedAt = deps.now()
  const deadline = startedAt + deps.waitSeconds * 1000
  const stillPending = (): ApprovalOutcome => ({
    status: 'pending',
    approvalId,
    approvalUri: pending.approvalUri ?? undefined,
    expiresAt: new Date(pending.expiresAt),
  })
  for (;;) {
    // Polled no faster than the interval, by this call or any other waiting for the same request.
    const pollAt = Math.max(deps.now(), pending.nextPollAt)
    if (pollAt > deadline || call.signal.aborted) return stillPending()
    if (pollAt > deps.now()) {
      await call.onWaiting(Math.round((deps.now() - startedAt) / 1000))
      await sleep(pollAt - deps.now(), call.signal)
      if (call.signal.aborted) return stillPending()
    }
    const outcome = await deps.ciba.poll(pending.authReqId)
    switch (outcome.status) {
      case 'approved': {
        // Used once: Deputy hands the token out once, and the pending request is forgotten.
        await forget()
        const approved = await approvalOfCall(deps, call, detail, outcome.accessToken)
        return approved === undefined
          ? { status: 'mismatch', approvalId }
          : { status: 'approved', approvalId: approved }
      }
      case 'denied':
        await forget()
        return { status: 'denied', approvalId }
      case 'expired':
        await forget()
        return { status: 'expired', approvalId }
      case 'invalid':
        await forget()
        return { status: 'used', approvalId }
      case 'pending':
      case 'slow_down': {
        // CIBA §11 slow_down: the interval grows by 5 seconds.
        const interval = pending.interval + (outcome.status === 'slow_down' ? 5 : 0)
        const next: PendingApproval = {
          ...pending,
          interval,
          nextPollAt: deps.now() + interval * 1000,
        }
        pending = next
        await call.state.update(key, (current) =>
          isPending(current) && current.authReqId === next.authReqId
            ? (next as unknown as JsonValue)
            : current,
        )
      }
    }
  }
}

/**
 * The approval an approval's token names (its `approval_id`) when the token is for exactly this
 * call: a token of this resource, issued to the kit's CIBA client for this person, whose
 * authorization details are exactly this call's one `tool_call` detail. Otherwise undefined.
 */
async function approvalOfCall(
  deps: ToolApprovalDeps,
  call: ApprovalCall,
  detail: ToolCallDetail,
  accessToken: string,
): Promise<string | undefined> {
  const check = await deps.verifier(accessToken)
  if (!check.ok) return undefined
  const { identity } = check
  const details = identity.claims.authorization_details
  const approvalId = identity.claims.approval_id
  const exact =
    identity.sub === call.identity.sub &&
    identity.clientId === deps.clientId &&
    typeof approvalId === 'string' &&
    Array.isArray(details) &&
    details.length === 1 &&
    canonicalJson(details[0]) === canonicalJson(detail)
  return exact ? approvalId : undefined
}
