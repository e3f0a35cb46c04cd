import { randomUUID } from 'node:crypto'
import { createLocalJWKSet, type JWTPayload, jwtVerify } from 'jose'
import type { User } from '../../identity/users.js'
import { looksLikeJwt, signCompactJwt } from '../access-token.js'
import { OAuthError } from '../errors.js'
import { formatScope, parseScope } from '../scopes.js'
import { ID_JAG_TYP } from './assertion.js'
import type { GrantContext, GrantResult } from './grant.js'

// draft-ietf-oauth-identity-assertion-authz-grant §4.2 (the MCP enterprise-managed-authorization
// extension): Deputy as the enterprise IdP. A client the person signed in to through Deputy hands
// back the ID token it got and names the authorization server of the resource it wants to call;
// Deputy answers with an Identity Assertion JWT that server can exchange (RFC 7523 jwt-bearer) for
// an access token. Only for authorization servers the operator trusts (kind `resource-as`), and
// only for clients the operator mapped there, under the client_id they have there.

/** The draft's token type of an ID-JAG. */
export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag'

/** The draft's §6 grant profile: the jwt-bearer grant with an ID-JAG (grants/id-jag-grant.ts). */
export const ID_JAG_GRANT_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'

/** RFC 8693 §3: an OpenID Connect ID token as the subject token. */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'

/** How long an ID-JAG is valid: the draft's example, enough to be exchanged at once. */
export const ID_JAG_LIFETIME_SECONDS = 300

function invalid(description: string, reason: string): OAuthError {
  return new OAuthError('invalid_request', description, { reason })
}

/**
 * An ID token Deputy issued to this client (§4.2: its `aud` MUST be the authenticated client):
 * our signature and issuer, `typ: JWT` (an access token is not an ID token), not expired, for a
 * person whose account is active.
 */
async function idTokenPerson(
  ctx: GrantContext,
  token: string,
): Promise<{ user: User; claims: JWTPayload }> {
  const { deps, client } = ctx
  let claims: JWTPayload
  try {
    if (!looksLikeJwt(token)) throw new Error('not a JWT')
    ;({ payload: claims } = await jwtVerify(
      token,
      createLocalJWKSet(await deps.signingKeys.jwks()),
      {
        issuer: deps.config.issuer,
        typ: 'JWT',
        algorithms: ['ES256', 'EdDSA'],
        currentDate: deps.clock.now(),
        requiredClaims: ['sub', 'aud', 'exp', 'iat'],
      },
    ))
  } catch {
    throw invalid(
      'the subject_token is not a valid ID token from this issuer',
      'subject-token-invalid',
    )
  }
  const aud = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? [])
  if (!aud.includes(client.clientId)) {
    throw invalid('the ID token was not issued to this client', 'subject-token-not-held')
  }
  const user = await deps.users.findById(claims.sub as string)
  if (user?.status !== 'active') {
    throw invalid('the subject_token is no longer active', 'subject-token-user-unavailable')
  }
  return { user, claims }
}

/**
 * The ID-JAG exchange (RFC 8693 with the draft's profile): `subject_token` an ID token Deputy
 * issued to the caller, `audience` the issuer of a trusted resource authorization server the
 * caller is mapped to, optional `resource` and `scope` carried into the ID-JAG for that server to
 * narrow or refuse. The answer is not an access token: `token_type: N_A`, no refresh token.
 */
export async function idJagExchange(ctx: GrantContext): Promise<GrantResult> {
  const { deps, client, form } = ctx
  if (form.get('subject_token_type') !== ID_TOKEN_TYPE) {
    throw invalid(
      `subject_token_type must be ${ID_TOKEN_TYPE}`,
      `unsupported-subject-token-type ${form.get('subject_token_type')?.slice(0, 100) ?? 'none'}`,
    )
  }
  const subjectToken = form.get('subject_token')
  if (!subjectToken) throw invalid('subject_token is required', 'missing-subject-token')
  if (form.get('actor_token') !== undefined || form.get('actor_token_type') !== undefined) {
    throw invalid('actor_token is not accepted for this token type', 'actor-token-not-supported')
  }
  const audience = form.get('audience')
  if (!audience)
    throw invalid(
      'audience is required: the issuer of the authorization server',
      'missing-audience',
    )
  const target = await deps.trustedIssuers.byIssuer(audience, 'audience')
  if (target?.kind !== 'resource-as') {
    throw new OAuthError(
      'invalid_target',
      'the audience is not an authorization server this issuer trusts',
      {
        reason: `id-jag-audience-not-trusted ${audience.slice(0, 200)}`,
      },
    )
  }
  const rule = target.rules.find((r) => r.client === client.clientId)
  if (!rule?.claims.client_id) {
    throw new OAuthError(
      'unauthorized_client',
      'this client may not get identity assertions for this audience',
      {
        reason: `id-jag-client-not-mapped ${target.name}`,
      },
    )
  }
  const resources = form.all('resource')
  if (resources.some((r) => r.length > 2048))
    throw invalid('resource is too long', 'resource-too-long')
  const scopes = parseScope(form.get('scope'))
  if (scopes === null) {
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  }
  const { user, claims: idToken } = await idTokenPerson(ctx, subjectToken)
  const iat = Math.floor(deps.clock.now().getTime() / 1000)
  const jti = randomUUID()
  const assertion: Record<string, unknown> = {
    iss: deps.config.issuer,
    sub: user.id,
    aud: target.issuer,
    client_id: rule.claims.client_id,
    jti,
    iat,
    exp: iat + ID_JAG_LIFETIME_SECONDS,
    email: user.email,
    ...(typeof idToken.auth_time === 'number' && { auth_time: idToken.auth_time }),
    ...(resources.length === 1 && { resource: resources[0] }),
    ...(resources.length > 1 && { resource: resources }),
    ...(scopes.length > 0 && { scope: formatScope(scopes) }),
  }
  const token = signCompactJwt(await deps.signingKeys.active(), ID_JAG_TYP, assertion)
  return {
    body: {
      access_token: token,
      issued_token_type: ID_JAG_TOKEN_TYPE,
      // RFC 8693 §2.2.1: the ID-JAG is not an access token.
      token_type: 'N_A',
      expires_in: ID_JAG_LIFETIME_SECONDS,
      ...(scopes.length > 0 && { scope: formatScope(scopes) }),
    },
    idJag: {
      userId: user.id,
      audience: target.issuer,
      trustedIssuer: target.name,
      remoteClientId: rule.claims.client_id,
      resources,
      scopes,
      jti,
      expiresAt: (iat + ID_JAG_LIFETIME_SECONDS) * 1000,
    },
  }
}
