import type { Actor, AuditLog } from '../audit/types.js'
import type { ApprovalNotifier } from './notify.js'
import type { ApprovalRequests, DecideResult } from './requests.js'

/** What a decision touches: the request, the audit chain, the client (its ping), the notifier. */
export interface DecideDeps {
  approvals: Pick<ApprovalRequests, 'decide' | 'markRecorded'>
  audit: AuditLog
  /** The client registry (oauth/clients.ts): where a ping-mode client is pinged. */
  clients: {
    get(
      clientId: string,
    ): Promise<{ backchannelClientNotificationEndpoint: string | null } | undefined>
  }
  notifier: Pick<ApprovalNotifier, 'decided'>
}

/**
 * A person's (or an operator's) decision on an approval request: stored once, recorded in the
 * audit chain, and only then in force (a token can be issued, waiting polls wake, a ping-mode
 * client is pinged). Used by the inbox, the CLI and the admin API.
 */
export async function decideApproval(
  deps: DecideDeps,
  input: {
    id: string
    decision: 'approved' | 'denied'
    actor: Actor
    /** SHA-256 of what the person was shown when deciding (null for an operator's decision). */
    shownDigest: string | null
    requestId?: string | null
  },
): Promise<DecideResult> {
  const result = await deps.approvals.decide(
    input.id,
    input.decision,
    input.actor,
    input.shownDigest,
  )
  if (result.status !== 'decided') return result
  const { request } = result
  await deps.audit.append({
    type: input.decision === 'approved' ? 'approval.granted' : 'approval.denied',
    actor: input.actor,
    onBehalfOf: { type: 'user', id: request.userId },
    target: { type: 'approval', id: request.id },
    decision: input.decision === 'approved' ? 'allow' : 'deny',
    requestId: input.requestId ?? null,
    data: {
      client: request.clientId,
      resource: request.resource,
      scopes: request.scopes,
      types: request.authorizationDetails.map((d) => d.type),
      ...(input.shownDigest !== null && { shownDigest: input.shownDigest }),
    },
  })
  await deps.approvals.markRecorded(request)
  const client = await deps.clients.get(request.clientId)
  await deps.notifier.decided(request, client?.backchannelClientNotificationEndpoint ?? null)
  return result
}
