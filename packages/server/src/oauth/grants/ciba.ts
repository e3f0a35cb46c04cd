import { mintAccessToken } from '../access-token.js'
import { OAuthError } from '../errors.js'
import { mintIdToken } from '../id-token.js'
import type { GrantContext, GrantResult, TokenResponse } from './grant.js'

/** CIBA §11: token errors answer 400 (`access_denied` included, unlike at /authorize). */
function refuse(
  code: ConstructorParameters<typeof OAuthError>[0],
  description: string,
  reason: string,
) {
  return new OAuthError(code, description, { reason, status: 400 })
}

/**
 * The CIBA grant (OpenID CIBA Core 1.0 §10.1, §11): `auth_req_id` for the tokens of an approved
 * request, once, and only by the client it was issued to. Until the person decides the answer is
 * `authorization_pending`; polled faster than the interval, `slow_down` (and the interval grows);
 * declined, `access_denied`; too late, `expired_token`. The access token carries exactly what was
 * approved (`authorization_details`, RFC 9396 §9.1) and no refresh token: an approval is one
 * transaction's authority.
 */
export async function cibaGrant(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  const authReqId = form.get('auth_req_id')
  if (!authReqId) throw refuse('invalid_request', 'auth_req_id is required', 'missing-auth-req-id')
  if (authReqId.length > 256)
    throw refuse('invalid_grant', 'the auth_req_id is invalid', 'long-auth-req-id')
  const polled = await deps.approvals.poll(authReqId, client.clientId)
  switch (polled.status) {
    case 'unknown':
      throw refuse('invalid_grant', 'the auth_req_id is invalid', 'unknown-auth-req-id')
    case 'wrong-client':
      throw refuse('invalid_grant', 'the auth_req_id is invalid', 'auth-req-id-of-another-client')
    case 'consumed':
      throw refuse('invalid_grant', 'the auth_req_id was already used', 'auth-req-id-used')
    case 'expired':
      throw refuse(
        'expired_token',
        'the request expired before it was approved',
        'approval-expired',
      )
    case 'slow-down':
      throw refuse(
        'slow_down',
        `poll at most every ${polled.intervalSeconds} seconds`,
        'polled-too-fast',
      )
    case 'pending':
      throw refuse('authorization_pending', 'the person has not decided yet', 'approval-pending')
    case 'denied':
      throw refuse('access_denied', 'the person declined the request', 'approval-denied')
  }
  const { request } = polled
  const [user, resource] = await Promise.all([
    deps.users.findById(request.userId),
    deps.resources.get(request.resource),
  ])
  if (user?.status !== 'active')
    throw refuse('invalid_grant', 'the person is not available', 'user-unavailable')
  if (!resource) throw refuse('invalid_target', 'the resource no longer exists', 'resource-removed')
  const scopes = request.scopes.filter((s) => s !== 'offline_access')
  const access = await mintAccessToken(deps, {
    dpopJkt: ctx.dpopJkt,
    client,
    user,
    resource,
    scopes,
    grantId: null,
    authorizationDetails: request.authorizationDetails,
    approvalId: request.id,
  })
  const body: TokenResponse = {
    access_token: access.token,
    token_type: access.tokenType,
    expires_in: access.expiresIn,
    scope: access.scope,
    ...(request.authorizationDetails.length > 0 && {
      authorization_details: request.authorizationDetails,
    }),
  }
  if (scopes.includes('openid')) {
    body.id_token = await mintIdToken(deps, {
      clientId: client.clientId,
      user,
      scopes,
      nonce: null,
      authTime: request.decidedAt ?? request.createdAt,
      accessToken: access.token,
    })
  }
  return {
    body,
    issued: {
      user,
      resource: resource.uri,
      scopes,
      jti: access.jti,
      grantId: null,
      refreshToken: false,
      approvalId: request.id,
    },
  }
}
