import { sha256Hex } from '../lib/random.js'
import type { ApprovalView } from '../ui/approvals.js'
import { type AuthorizationDetailType, detailSentence } from './detail-types.js'
import type { ApprovalRequest } from './requests.js'

// What a person sees of an approval request, and the digest a decision binds to. The page, the
// digest and the notices are all built from this one view, so a decision can only be taken on
// exactly what was displayed: if the request (or how its details read) is no longer what the page
// showed, the digest posted back no longer matches and the decision is refused.

/** An approval request as the person's page shows it (plain data, for ui/). */
export type ShownApproval = ApprovalView

/** What the view is built from besides the request itself. */
export interface ShownContext {
  client: { name: string } | undefined
  person: { email: string }
  resource: { name: string } | undefined
  /** The types the request's resource accepts (detailTypes.list). */
  types: readonly AuthorizationDetailType[]
  scopeSentence(scope: string): string
}

/** The request as the person sees it. */
export function shownApproval(request: ApprovalRequest, context: ShownContext): ShownApproval {
  const details = request.authorizationDetails.map((detail) => {
    const type = context.types.find((t) => t.type === detail.type)
    return {
      sentence: detailSentence(type, detail),
      json: JSON.stringify(detail, null, 2),
      highRisk: type?.highRisk === true,
    }
  })
  return {
    id: request.id,
    clientName: context.client?.name ?? request.clientId,
    clientId: request.clientId,
    personEmail: context.person.email,
    resourceName: context.resource?.name ?? request.resource,
    resourceUri: request.resource,
    scopes: request.scopes.map((scope) => ({ scope, sentence: context.scopeSentence(scope) })),
    bindingMessage: request.bindingMessage,
    details,
    createdAt: new Date(request.createdAt).toISOString(),
    expiresAt: new Date(request.expiresAt).toISOString(),
    highRisk: details.some((d) => d.highRisk),
    status: request.status,
    decidedAt: request.decidedAt === null ? null : new Date(request.decidedAt).toISOString(),
  }
}

/**
 * The digest of what a decision page displays: SHA-256 over the displayed content (everything a
 * person reads before pressing Approve; not the status, which the decision itself changes), as
 * `sha-256:<hex>`. Stored with the decision (approval_requests.shown_digest).
 */
export function shownDigest(shown: ShownApproval): string {
  const content = {
    id: shown.id,
    client: [shown.clientId, shown.clientName],
    person: shown.personEmail,
    resource: [shown.resourceUri, shown.resourceName],
    scopes: shown.scopes,
    bindingMessage: shown.bindingMessage,
    details: shown.details,
    expiresAt: shown.expiresAt,
    highRisk: shown.highRisk,
  }
  return `sha-256:${sha256Hex(JSON.stringify(content))}`
}

/** The request in words, one line: what a notice (email, webhook) says it is about. */
export function shownSummary(shown: ShownApproval): string {
  return [shown.bindingMessage, ...shown.details.map((d) => d.sentence)]
    .filter((part): part is string => !!part)
    .join(' — ')
}
