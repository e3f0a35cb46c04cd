import type { AnswersItself } from '../lib/errors.js'
import { isRateLimited } from '../lib/rate-limit.js'

/**
 * OAuth error codes on the wire: RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
 * RFC 7591 §3.2.2, RFC 8707 §2, RFC 9449 §5.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'login_required'
  | 'consent_required'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'temporarily_unavailable'
  | 'server_error'
  // RFC 9396 §5
  | 'invalid_authorization_details'
  // OpenID CIBA Core 1.0 §13 (backchannel endpoint) and §11 (token endpoint)
  | 'expired_login_hint_token'
  | 'unknown_user_id'
  | 'invalid_binding_message'
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  // Deputy's extension (docs/vault.md "The exchange"): the person must connect the account first
  | 'connection_required'
  // RFC 9449 §5, §8
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'

const STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  // RFC 6749 §5.2: 401 (with a challenge) only when the client tried HTTP Basic; client-auth.ts.
  invalid_client: 400,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_response_type: 400,
  unsupported_token_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  access_denied: 403,
  login_required: 400,
  consent_required: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  temporarily_unavailable: 503,
  server_error: 500,
  invalid_authorization_details: 400,
  expired_login_hint_token: 400,
  unknown_user_id: 400,
  invalid_binding_message: 400,
  authorization_pending: 400,
  slow_down: 400,
  expired_token: 400,
  connection_required: 400,
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
}

/**
 * An OAuth protocol error. `description` goes on the wire and is deliberately plain; `reason`
 * is the precise internal cause, for the audit chain and logs only (never sent to the caller).
 */
export class OAuthError extends Error implements AnswersItself {
  readonly code: OAuthErrorCode
  readonly status: number
  readonly description: string
  readonly reason: string
  readonly headers: Record<string, string>
  /** Further members of the JSON error (an extension's, e.g. `connect_uri`); never a secret. */
  readonly fields: Readonly<Record<string, string>>

  constructor(
    code: OAuthErrorCode,
    description: string,
    options: {
      reason?: string
      status?: number
      headers?: Record<string, string>
      fields?: Record<string, string>
    } = {},
  ) {
    super(description)
    this.name = 'OAuthError'
    this.code = code
    this.status = options.status ?? STATUS[code]
    this.description = description
    this.reason = options.reason ?? code
    this.headers = options.headers ?? {}
    this.fields = options.fields ?? {}
  }

  /** The JSON error response (RFC 6749 §5.2). */
  toResponse(): Response {
    return oauthErrorResponse(this)
  }
}

/** True for an OAuthError, also one from another copy of this module. */
export function isOAuthError(err: unknown): err is OAuthError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'OAuthError' &&
    typeof (err as { code?: unknown }).code === 'string'
  )
}

/** The JSON error response of the token, revocation, introspection and registration endpoints. */
export function oauthErrorResponse(err: OAuthError): Response {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    ...err.headers,
  }
  // RFC 6749 §5.2 lets a response carry further members; `fields` never overrides the two.
  const body = { ...(err.fields ?? {}), error: err.code, error_description: err.description }
  return new Response(JSON.stringify(body), {
    status: err.status,
    headers,
  })
}

/**
 * Runs a rate-limit take and turns its refusal into the OAuth answer: 429 (RFC 6585 §4) with
 * `Retry-After`, `temporarily_unavailable` (the OAuth code for "not now"; RFC 7591 and RFC 6749
 * §5.2 name none for this), and the limit's name as the reason the refusal log records.
 */
export async function withinRateLimit(take: () => Promise<void>, limit: string): Promise<void> {
  try {
    await take()
  } catch (err) {
    if (!isRateLimited(err)) throw err
    throw new OAuthError('temporarily_unavailable', err.message, {
      reason: `rate-limited ${limit}`,
      status: 429,
      headers: { 'Retry-After': String(err.retryAfterSeconds) },
    })
  }
}
