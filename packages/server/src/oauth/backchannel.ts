import { Hono } from 'hono'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose'
import type { AuthorizationDetailType, DetailTypes } from '../approvals/detail-types.js'
import { detailSentence, InvalidAuthorizationDetails } from '../approvals/detail-types.js'
import type { ApprovalNotifier } from '../approvals/notify.js'
import type { ApprovalRequest, ApprovalRequests } from '../approvals/requests.js'
import type { RefusalLog } from '../audit/refusals.js'
import type { AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { addressKey, type RateLimits } from '../http/rate-limits.js'
import type { User, Users } from '../identity/users.js'
import type { SigningKeys } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { authenticateClient, type ClientAuthDeps, claimedClientId } from './client-auth.js'
import { CIBA_GRANT_TYPE, type Client } from './clients.js'
import { isOAuthError, OAuthError, withinRateLimit } from './errors.js'
import type { Grants } from './grants.js'
import type { Resources } from './resources.js'
import { OIDC_SCOPES, parseScope } from './scopes.js'
import { noStoreJson, readOAuthForm } from './token.js'

// OpenID Connect Client-Initiated Backchannel Authentication Core 1.0: a client (an agent, an
// MCP server) asks Deputy to ask a person, who decides on their own device; the client then polls
// the token endpoint (poll mode) or is told when to fetch (ping mode). Here: the backchannel
// authentication endpoint (§7); the token side is oauth/grants/ciba.ts.

/** What the backchannel endpoint uses. */
export interface BackchannelDeps extends ClientAuthDeps {
  config: Pick<
    ResolvedConfig,
    | 'issuer'
    | 'backchannelDefaultExpirySeconds'
    | 'backchannelMaxExpirySeconds'
    | 'backchannelPollIntervalSeconds'
    | 'backchannelMaxPendingPerClientAndPerson'
  >
  clock: Clock
  users: Pick<Users, 'findById' | 'findByEmail'>
  resources: Pick<Resources, 'resolve'>
  grants: Pick<Grants, 'hasActiveGrantWith'>
  signingKeys: Pick<SigningKeys, 'jwks'>
  approvals: Pick<ApprovalRequests, 'create'>
  detailTypes: Pick<DetailTypes, 'check'>
  notifier: Pick<ApprovalNotifier, 'requested'>
  audit: AuditLog
  refusals: Pick<RefusalLog, 'record'>
  rateLimits: Pick<RateLimits, 'take'>
}

/** CIBA §7.1: a binding message is short and plain: shown on both devices. */
const BINDING_MESSAGE_MAX = 100

/** CIBA §7.1: the client_notification_token is a bearer token (RFC 6750 §2.1 b64token), ≤ 1024. */
const NOTIFICATION_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

function invalid(
  code: ConstructorParameters<typeof OAuthError>[0],
  description: string,
  reason: string,
) {
  return new OAuthError(code, description, { reason })
}

/** Who a request is about: one of the three hints, resolved to an active person, or an error. */
async function hintedPerson(
  deps: BackchannelDeps,
  form: { get(name: string): string | undefined },
  clientId: string,
): Promise<User> {
  const hints = (['login_hint', 'id_token_hint', 'login_hint_token'] as const).filter(
    (name) => form.get(name) !== undefined,
  )
  // CIBA §7.1: exactly one hint.
  if (hints.length !== 1)
    throw invalid(
      'invalid_request',
      'send exactly one of login_hint, id_token_hint and login_hint_token',
      `hints ${hints.length}`,
    )
  const [hint] = hints
  const value = form.get(hint as string) as string
  let sub: string | undefined
  let email: string | undefined
  if (hint === 'login_hint') {
    if (value.startsWith('{')) {
      // Auth0's form: {"format":"iss_sub","iss":"<issuer>","sub":"<user id>"}.
      let parsed: { format?: unknown; iss?: unknown; sub?: unknown }
      try {
        parsed = JSON.parse(value) as typeof parsed
      } catch {
        throw invalid('invalid_request', 'login_hint is not valid JSON', 'login-hint-json')
      }
      if (parsed.format !== 'iss_sub' || typeof parsed.sub !== 'string')
        throw invalid(
          'invalid_request',
          'login_hint must use the iss_sub format',
          'login-hint-format',
        )
      if (parsed.iss !== deps.config.issuer && parsed.iss !== `${deps.config.issuer}/`)
        throw invalid('unknown_user_id', 'the person is not known here', 'login-hint-other-issuer')
      sub = parsed.sub
    } else if (value.includes('@')) email = value
    else sub = value
  } else {
    // An ID token Deputy issued to this client (CIBA §7.1: "previously issued to the Client"):
    // id_token_hint may have expired (OIDC Core §3.1.2.1); a login_hint_token, Deputy's format
    // for it, must still be valid (CIBA §7.1).
    const claims = await verifiedIdToken(deps, value)
    const audience = claims?.aud
    if (!claims || !(Array.isArray(audience) ? audience.includes(clientId) : audience === clientId))
      throw invalid(
        'invalid_request',
        `${hint} is not an ID token Deputy issued to this client`,
        `${hint}-invalid`,
      )
    if (
      hint === 'login_hint_token' &&
      (typeof claims.exp !== 'number' || claims.exp * 1000 <= deps.clock.now().getTime())
    )
      throw invalid('expired_login_hint_token', 'the login_hint_token has expired', 'hint-expired')
    sub = typeof claims.sub === 'string' ? claims.sub : undefined
  }
  const person = sub
    ? await deps.users.findById(sub)
    : email
      ? await deps.users.findByEmail(email)
      : undefined
  if (person?.status !== 'active')
    throw invalid('unknown_user_id', 'the person is not known here', 'unknown-person')
  return person
}

/** The claims of an ID token signed by one of Deputy's published keys and issued here, or null. */
async function verifiedIdToken(
  deps: BackchannelDeps,
  token: string,
): Promise<Record<string, unknown> | null> {
  try {
    if (decodeProtectedHeader(token).typ !== 'JWT') return null
    const { payload } = await compactVerify(
      token,
      createLocalJWKSet(await deps.signingKeys.jwks()),
      {
        algorithms: ['ES256', 'EdDSA'],
      },
    )
    const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>
    return claims.iss === deps.config.issuer ? claims : null
  } catch {
    return null
  }
}

/** CIBA §7.1 `requested_expiry`: a positive whole number of seconds, capped by the setting. */
function expiryOf(deps: BackchannelDeps, value: string | undefined): number {
  if (value === undefined) return deps.config.backchannelDefaultExpirySeconds
  if (!/^[1-9][0-9]{0,8}$/.test(value))
    throw invalid(
      'invalid_request',
      'requested_expiry must be a positive whole number of seconds',
      'bad-expiry',
    )
  return Math.min(Number(value), deps.config.backchannelMaxExpirySeconds)
}

/** The ask as the person will read it, for the channels that tell them about it. */
/** The request in words for a notice: its binding message and each detail's sentence. */
function summaryOf(request: ApprovalRequest, types: readonly AuthorizationDetailType[]): string {
  return [
    request.bindingMessage,
    ...request.authorizationDetails.map((detail, i) => detailSentence(types[i], detail)),
  ]
    .filter(Boolean)
    .join(' — ')
}

/**
 * POST /bc-authorize (CIBA §7): an authenticated confidential client registered for CIBA asks for
 * a person's approval; the answer is the `auth_req_id` to poll with, its lifetime and the polling
 * interval. The request is audited (`approval.requested`) before the person is told.
 */
export function createBackchannelRoutes(deps: BackchannelDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const endpointUrl = `${deps.config.issuer}/bc-authorize`

  app.post('/bc-authorize', async (c) => {
    const authorization = c.req.header('authorization')
    let client: Client | undefined
    let form: Awaited<ReturnType<typeof readOAuthForm>> | undefined
    try {
      const address = addressKey(c.get('clientAddress'))
      await withinRateLimit(
        () => deps.rateLimits.take('backchannel-address', address),
        'backchannel-address',
      )
      form = await readOAuthForm(c)
      ;({ client } = await authenticateClient(deps, authorization, form, {
        endpointUrl,
        requester: c.get('clientAddress') ?? 'unknown',
      }))
      const clientId = client.clientId
      await withinRateLimit(
        () => deps.rateLimits.take('backchannel-client', clientId),
        'backchannel-client',
      )
      // CIBA §7.1: only confidential clients, registered for this grant.
      if (client.tokenEndpointAuthMethod === 'none' || !client.grantTypes.includes(CIBA_GRANT_TYPE))
        throw invalid('unauthorized_client', 'this client may not use CIBA', 'not-a-ciba-client')
      if (form.has('request'))
        throw invalid(
          'invalid_request',
          'signed authentication requests are not supported',
          'request-object',
        )
      const scopes = parseScope(form.get('scope'))
      if (scopes === null) throw invalid('invalid_scope', 'scope is malformed', 'malformed-scope')
      // CIBA §7.1: "CIBA authentication requests MUST therefore contain the openid scope value".
      if (!scopes.includes('openid'))
        throw invalid('invalid_scope', 'scope must include openid', 'no-openid')
      const person = await hintedPerson(deps, form, client.clientId)
      // A client that registered itself may ask only people who already allowed it: otherwise
      // anyone could make Deputy bother anyone (the answer does not tell the two cases apart).
      if (
        client.kind !== 'registered' &&
        !(await deps.grants.hasActiveGrantWith(person.id, client.clientId))
      )
        throw invalid(
          'unknown_user_id',
          'the person is not known here',
          'self-registered-client-stranger',
        )
      const bindingMessage = form.get('binding_message') ?? null
      if (
        bindingMessage !== null &&
        (bindingMessage.length > BINDING_MESSAGE_MAX ||
          [...bindingMessage].some((ch) => ch < ' ' || ch === '\u007f'))
      )
        throw invalid(
          'invalid_binding_message',
          `binding_message must be plain text of at most ${BINDING_MESSAGE_MAX} characters`,
          'bad-binding-message',
        )
      const expiresIn = expiryOf(deps, form.get('requested_expiry'))
      const resource = await deps.resources.resolve(form.all('resource'))
      const unknownScopes = scopes.filter(
        (s) => !OIDC_SCOPES.has(s) && !Object.hasOwn(resource.scopes, s),
      )
      if (unknownScopes.length > 0)
        throw invalid(
          'invalid_scope',
          'a requested scope is not offered by the resource',
          `unknown-scope ${unknownScopes.join(' ')}`,
        )
      let details: Awaited<ReturnType<BackchannelDeps['detailTypes']['check']>>
      try {
        details = await deps.detailTypes.check(resource.uri, form.get('authorization_details'))
      } catch (err) {
        if (err instanceof InvalidAuthorizationDetails)
          throw invalid(
            'invalid_authorization_details',
            err.message,
            'invalid-authorization-details',
          )
        throw err
      }
      const ping = client.backchannelTokenDeliveryMode === 'ping'
      const notificationToken = form.get('client_notification_token') ?? null
      if (ping && notificationToken === null)
        throw invalid(
          'invalid_request',
          'client_notification_token is required in ping mode',
          'no-notification-token',
        )
      if (
        notificationToken !== null &&
        (notificationToken.length > 1024 || !NOTIFICATION_TOKEN.test(notificationToken))
      )
        throw invalid(
          'invalid_request',
          'client_notification_token is not a valid bearer token',
          'bad-notification-token',
        )

      const created = await deps.approvals.create(
        {
          clientId: client.clientId,
          userId: person.id,
          resource: resource.uri,
          scopes,
          authorizationDetails: details.details,
          bindingMessage,
          expiresInSeconds: expiresIn,
          deliveryMode: ping ? 'ping' : 'poll',
          notificationToken: ping ? notificationToken : null,
        },
        {
          intervalSeconds: deps.config.backchannelPollIntervalSeconds,
          maxPending: deps.config.backchannelMaxPendingPerClientAndPerson,
        },
      )
      if (!created)
        throw invalid(
          'invalid_request',
          'this client already has too many undecided requests for this person',
          'too-many-pending',
        )
      const { request, authReqId } = created
      await deps.audit.append({
        type: 'approval.requested',
        actor: { type: 'client', id: client.clientId, label: client.name },
        onBehalfOf: { type: 'user', id: person.id },
        target: { type: 'approval', id: request.id },
        requestId: c.get('requestId'),
        data: {
          resource: resource.uri,
          scopes: request.scopes,
          types: request.authorizationDetails.map((d) => d.type),
          deliveryMode: request.deliveryMode,
          expiresAt: new Date(request.expiresAt).toISOString(),
        },
      })
      const page = `${deps.config.issuer}/approvals/${request.id}`
      await deps.notifier.requested({
        request,
        person: { id: person.id, email: person.email, name: person.name },
        clientName: client.name,
        link: page,
        summary: summaryOf(request, details.types),
      })
      return noStoreJson({
        auth_req_id: authReqId,
        expires_in: expiresIn,
        interval: request.intervalSeconds,
        // Deputy's extension members (CIBA §7.3 clients ignore unknown ones): the request's id,
        // which its tokens name as `approval_id`, and the person's page for it, so a client can
        // hand the person the link. Neither is a credential: the page needs the person's sign-in.
        approval_id: request.id,
        approval_uri: page,
      })
    } catch (err) {
      if (isOAuthError(err) && err.status < 500) {
        const clientId = client?.clientId ?? claimedClientId(authorization, form)
        await deps.refusals.record({
          type: 'approval.refused',
          actor: { type: 'client', id: clientId?.slice(0, 200) ?? 'unknown' },
          decision: 'deny',
          reason: err.reason.slice(0, 200),
          requestId: c.get('requestId'),
          data: { error: err.code },
        })
      }
      throw err
    }
  })

  return app
}
