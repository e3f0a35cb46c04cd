import { type AccessTokenClaims, inactiveReason, verifyAccessToken } from '../access-token.js'
import type { Client } from '../clients.js'
import { OAuthError } from '../errors.js'
import type { GrantContext, GrantResult } from './grant.js'

// What every RFC 8693 token exchange profile shares (grants/token-exchange.ts dispatches to them):
// the token types, the profile's shape and the subject token checks.

/** RFC 8693 §3: a Deputy access token as the subject token. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

/** RFC 8693 §3: an ID token (OpenID Connect) Deputy issued, as the subject token. */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'

/** The request's tokens, as the shared checks leave them for the profile. */
export interface ExchangeRequest {
  subjectToken: string
  subjectTokenType: string
  requestedTokenType: string
  /** `actor_token` with its type (RFC 8693 §2.1: the one comes only with the other). */
  actor: { token: string; tokenType: string } | undefined
}

/** A token exchange profile: what one `requested_token_type` is answered with. */
export interface ExchangeProfile {
  /** The `subject_token_type` values it takes; any other is `invalid_request`. */
  readonly subjectTokenTypes: readonly string[]
  exchange(ctx: GrantContext, request: ExchangeRequest): Promise<GrantResult>
}

/** RFC 8693 §2.2.2: an invalid or unacceptable request or subject token is `invalid_request`. */
export function invalid(description: string, reason: string): OAuthError {
  return new OAuthError('invalid_request', description, { reason })
}

/** `aud` as a list (RFC 7519 §4.1.3 allows a string or an array). */
export function audiences(claims: AccessTokenClaims): string[] {
  return typeof claims.aud === 'string' ? [claims.aud] : [...claims.aud]
}

/**
 * Whether the caller holds the person's token legitimately: it was issued to the caller itself
 * (the agent exchanging its own token), or it is for a resource the operator registered the
 * caller for (`allowedResources`: the MCP server that received the token from the agent). A
 * client with no resources listed serves none: a stolen token is no use to just any client.
 */
export function holdsSubjectToken(client: Client, subject: AccessTokenClaims): boolean {
  if (subject.client_id === client.clientId) return true
  const served = client.allowedResources ?? []
  return audiences(subject).some((aud) => served.includes(aud))
}

/**
 * An active Deputy access token (our issuer and signature, not expired, not revoked — the checks
 * of introspection and userinfo), or `invalid_request` naming why not.
 */
export async function activeAccessToken(
  ctx: GrantContext,
  token: string,
  which: 'subject_token' | 'actor_token',
): Promise<AccessTokenClaims> {
  const claims = await verifyAccessToken(ctx.deps, token)
  const tag = which === 'subject_token' ? 'subject-token' : 'actor-token'
  if (!claims) throw invalid(`the ${which} is invalid or expired`, `${tag}-invalid`)
  const inactive = await inactiveReason(ctx.deps, claims)
  if (inactive !== null) throw invalid(`the ${which} is no longer active`, `${tag}-${inactive}`)
  return claims
}
