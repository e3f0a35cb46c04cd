import type { User } from '../../identity/users.js'
import { mintAccessToken } from '../access-token.js'
import { OAuthError } from '../errors.js'
import { parseScope } from '../scopes.js'
import type { TrustedIssuer } from '../trusted-issuers.js'
import { assertionRecord, type VerifiedAssertion } from './assertion.js'
import type { GrantContext, GrantResult } from './grant.js'

// draft-ietf-oauth-identity-assertion-authz-grant §4.3 (the MCP enterprise-managed-authorization
// extension): Deputy as the resource's authorization server, given an Identity Assertion JWT an
// enterprise IdP the operator trusts issued. The IdP decided the person may use this client at
// this resource with these scopes; Deputy checks the ID-JAG is for it, for this client, and names
// one of its people, and issues an access token within what the ID-JAG says — no refresh token
// (§4.3: the client presents a new ID-JAG instead), no consent page.

function refuse(description: string, reason: string): OAuthError {
  return new OAuthError('invalid_grant', description, { reason })
}

/** A claim given as a string or a list of strings (RFC 8707 `resource` may be either). */
function stringList(value: unknown): string[] | null {
  if (value === undefined) return []
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  return null
}

/**
 * The Deputy person an ID-JAG's `sub` (or `email`) names. By the IdP's subject, when the operator
 * named the sign-in provider that is this IdP (the person signed in through it before, so the link
 * exists); else by `email`, only when the operator said this IdP's email claim may be trusted to
 * name people (an address the IdP does not control would let whoever holds it there take over the
 * Deputy account). No match is no token: Deputy does not create people from an ID-JAG.
 */
async function personOf(
  ctx: GrantContext,
  issuer: TrustedIssuer,
  claims: VerifiedAssertion['claims'],
): Promise<User> {
  const { deps } = ctx
  let user: User | undefined
  if (issuer.linkProvider !== null) {
    const link = await deps.db
      .selectFrom('provider_identities')
      .select('user_id')
      .where('provider', '=', issuer.linkProvider)
      .where('subject', '=', claims.sub)
      .executeTakeFirst()
    if (link) user = await deps.users.findById(link.user_id)
  }
  if (!user && issuer.matchEmail && typeof claims.email === 'string') {
    user = await deps.users.findByEmail(claims.email)
  }
  if (!user) {
    throw refuse(
      'no account here matches the person the identity assertion names; an administrator must create it first',
      `id-jag-no-person ${issuer.name}`,
    )
  }
  if (user.status !== 'active') {
    throw refuse('the person’s account is disabled', `id-jag-person-disabled ${issuer.name}`)
  }
  return user
}

/**
 * The ID-JAG profile of the jwt-bearer grant: a confidential client whose id is the ID-JAG's
 * `client_id`, a resource within the ID-JAG's `resource` (the request's `resource`, else the
 * ID-JAG's one, else the default), scopes within its `scope` and offered by the resource.
 */
export async function idJagGrant(
  ctx: GrantContext,
  verified: VerifiedAssertion,
): Promise<GrantResult> {
  const { deps, client, form } = ctx
  const { issuer, claims } = verified
  if (client.tokenEndpointAuthMethod === 'none') {
    throw new OAuthError('unauthorized_client', 'an ID-JAG needs a confidential client', {
      reason: 'public-client',
    })
  }
  // §4.3: the ID-JAG's client_id MUST be the authenticated client.
  if (claims.client_id !== client.clientId) {
    throw refuse(
      'the identity assertion was issued for another client',
      `id-jag-client-mismatch ${issuer.name}`,
    )
  }
  const allowedResources = stringList(claims.resource)
  if (allowedResources === null)
    throw refuse('the identity assertion’s resource is malformed', 'id-jag-resource-malformed')
  const requested = form.all('resource')
  let target = requested
  if (requested.length === 0 && allowedResources.length === 1) target = allowedResources
  const resource = await deps.resources.resolve(target)
  if (allowedResources.length > 0 && !allowedResources.includes(resource.uri)) {
    throw new OAuthError('invalid_target', 'the identity assertion is not for this resource', {
      reason: `id-jag-resource-not-allowed ${resource.uri}`,
    })
  }
  const asserted = parseScope(typeof claims.scope === 'string' ? claims.scope : undefined)
  const asked = parseScope(form.get('scope'))
  if (asserted === null || asked === null) {
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  }
  const scopes = asked.length > 0 ? asked : asserted
  const refused = scopes.filter((s) => !asserted.includes(s) || !Object.hasOwn(resource.scopes, s))
  if (refused.length > 0) {
    throw new OAuthError(
      'invalid_scope',
      'a requested scope is not within the identity assertion',
      {
        reason: `id-jag-scope-not-allowed ${refused.join(' ').slice(0, 150)}`,
      },
    )
  }
  if (scopes.length === 0) {
    throw new OAuthError('invalid_scope', 'the identity assertion grants no scope here', {
      reason: `id-jag-no-scope ${resource.uri}`,
    })
  }
  const user = await personOf(ctx, issuer, claims)
  const access = await mintAccessToken(deps, {
    dpopJkt: ctx.dpopJkt,
    client,
    user,
    resource,
    scopes,
    grantId: null,
  })
  return {
    body: {
      access_token: access.token,
      token_type: access.tokenType,
      expires_in: access.expiresIn,
      scope: access.scope,
    },
    issued: {
      user,
      resource: resource.uri,
      scopes,
      jti: access.jti,
      grantId: null,
      refreshToken: false,
      assertion: assertionRecord(verified),
    },
  }
}
