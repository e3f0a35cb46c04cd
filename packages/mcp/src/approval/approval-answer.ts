import type { CallToolResult } from '@modelcontextprotocol/server'
import type { Identity } from '../identity.js'
import type { ApprovalOutcome } from './tool-approval.js'

/** The `_meta` key of a pending result: `{ status, approvalId, approvalUri, expiresAt }`. */
export const APPROVAL_META_KEY = 'io.deputy/approval'

/** A call that did not get its approval: how it is recorded and what the agent reads. */
export interface ApprovalRefusal {
  readonly decision: 'needs_approval' | 'deny'
  /** `approval_pending`, `approval_denied`, `approval_expired`, `approval_mismatch`, `approval_used`. */
  readonly reason: string
  readonly result: CallToolResult
}

/** How the person is named to the agent: their name or email when the token carries one. */
export function personName(identity: Identity): string | undefined {
  const { name, email } = identity.claims
  if (typeof name === 'string' && name.length > 0) return name
  if (typeof email === 'string' && email.length > 0) return email
  return undefined
}

/** The progress message of a call waiting for the person. */
export function waitingMessage(identity: Identity): string {
  const person = personName(identity)
  return `waiting for ${person === undefined ? "the person's" : `${person}'s`} approval`
}

function toolError(text: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }] }
}

/**
 * The answer to a call whose approval has not (or not validly) arrived; shared by the kit and
 * the gateway so an agent reads the same either way.
 */
export function approvalRefusal(
  outcome: Exclude<ApprovalOutcome, { status: 'approved' }>,
  tool: string,
  identity: Identity,
): ApprovalRefusal {
  const whose = personName(identity) ?? 'the person you act for'
  switch (outcome.status) {
    case 'pending': {
      const where = outcome.approvalUri === undefined ? '' : ` at ${outcome.approvalUri}`
      return {
        decision: 'needs_approval',
        reason: 'approval_pending',
        result: {
          // Not done: the agent must not take it for the tool's answer.
          isError: true,
          content: [
            {
              type: 'text',
              text: `This call to ${tool} is waiting for ${whose}'s approval${where}, until ${outcome.expiresAt.toISOString()}. Call it again with the same arguments once they have approved.`,
            },
          ],
          _meta: {
            [APPROVAL_META_KEY]: {
              status: 'pending',
              ...(outcome.approvalId !== undefined && { approvalId: outcome.approvalId }),
              ...(outcome.approvalUri !== undefined && { approvalUri: outcome.approvalUri }),
              expiresAt: outcome.expiresAt.toISOString(),
            },
          },
        },
      }
    }
    case 'denied':
      return {
        decision: 'deny',
        reason: 'approval_denied',
        result: toolError(
          `${whose.charAt(0).toUpperCase()}${whose.slice(1)} declined this call to ${tool}.`,
        ),
      }
    case 'expired':
      return {
        decision: 'needs_approval',
        reason: 'approval_expired',
        result: toolError(
          `The approval of this call to ${tool} expired before ${whose} decided. Call it again to ask anew.`,
        ),
      }
    case 'mismatch':
      return {
        decision: 'deny',
        reason: 'approval_mismatch',
        result: toolError(
          `This call to ${tool} was refused: the approval given is not for exactly this call.`,
        ),
      }
    case 'used':
      return {
        decision: 'needs_approval',
        reason: 'approval_used',
        result: toolError(
          `That approval of ${tool} was already used. Call it again to ask ${whose} anew.`,
        ),
      }
  }
}

/** CIBA §7.1 binding message: plain text of at most 100 characters, shown on both devices. */
export function plainBindingMessage(text: string): string {
  return [...text]
    .map((ch) => (ch < ' ' || ch === '\u007f' ? ' ' : ch))
    .join('')
    .slice(0, 100)
}
