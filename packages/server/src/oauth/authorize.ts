import { type Context, Hono } from 'hono'
import {
  type AuthorizationDetail,
  type DetailTypes,
  detailSentence,
  InvalidAuthorizationDetails,
} from '../approvals/detail-types.js'
import type { RefusalLog } from '../audit/refusals.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { CONTENT_SECURITY_POLICY } from '../http/middleware.js'
import { signInHref } from '../identity/return-to.js'
import { type CurrentSession, readSession, type SessionDeps } from '../identity/sessions.js'
import type { Clock } from '../lib/clock.js'
import { hasNul } from '../lib/form.js'
import { safeEqual } from '../lib/random.js'
import { createRateLimiter, isRateLimited, RateLimited } from '../lib/rate-limit.js'
import type { Store } from '../store/db.js'
import { consentPage, returningPage } from '../ui/consent.js'
import { type MessageFact, messagePage } from '../ui/message-page.js'
import {
  type AuthorizationRequest,
  type AuthorizationRequests,
  createAuthorizationRequests,
} from './authorization-requests.js'
import type { Client, Clients } from './clients.js'
import {
  approveAuthorization,
  authorizationResponseUrl,
  type ConsentDeps,
  denyAuthorization,
  planConsent,
  redirectWarnings,
  scopeSentence,
} from './consent.js'
import { isOAuthError, OAuthError } from './errors.js'
import { matchRedirectUri } from './redirect-uris.js'
import type { Resource, Resources } from './resources.js'
import { OIDC_SCOPES, parseScope } from './scopes.js'

/** RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

/** Clients nobody vetted: their redirect URIs are only as trustworthy as whoever registered them. */
const UNTRUSTED_KINDS = new Set<Client['kind']>(['dynamic', 'metadata_document'])

/** RFC 8707 §2 lets `resource` repeat; RFC 6749 §3.1 forbids every other parameter twice. */
const REPEATABLE = new Set(['resource'])

/** Why a request stopped on a Deputy page: the client or redirect URI could not be trusted. */
class PageError extends Error {
  readonly text: string
  readonly reason: string
  readonly clientId: string | null
  readonly facts: MessageFact[]

  constructor(text: string, reason: string, clientId: string | null, facts: MessageFact[] = []) {
    super(text)
    this.text = text
    this.reason = reason
    this.clientId = clientId
    this.facts = facts
  }
}

/** Longest value a page echoes; a request can carry far more, and the page is for a person. */
const SHOWN_LENGTH = 300

/** A value from the request as a page shows it: cut to SHOWN_LENGTH (the page escapes it). */
function shown(value: string): string {
  return value.length > SHOWN_LENGTH ? `${value.slice(0, SHOWN_LENGTH)}…` : value
}

/** The app a page is about: the name people see, and the client_id a developer looks for. */
function appFact(client: Pick<Client, 'name' | 'clientId'>): MessageFact {
  return { term: 'App', value: `${client.name} (client_id ${shown(client.clientId)})` }
}

/**
 * The parameter an error is about, for the page that shows it: a developer reading "the requested
 * resource is unknown" wants to see which one. Error descriptions stay plain (RFC 6749 §4.1.2.1
 * limits their characters); the value goes on the page only, escaped.
 */
const REFUSED_PARAMETER: Partial<Record<OAuthError['code'], string>> = {
  invalid_target: 'resource',
  invalid_scope: 'scope',
  unsupported_response_type: 'response_type',
  invalid_authorization_details: 'authorization_details',
}

function refusedFacts(err: OAuthError, params: URLSearchParams | undefined): MessageFact[] {
  const name = REFUSED_PARAMETER[err.code]
  const values = name === undefined || params === undefined ? [] : params.getAll(name)
  if (name === undefined || values.length === 0) return []
  return [{ term: `Refused ${name}`, value: shown(values.join(' ')) }]
}

/** A request whose client and redirect URI check out, so errors may go back to the client. */
interface TrustedTarget {
  client: Client
  redirectUri: string
  state: string | null
}

type Validated = { request: AuthorizationRequest; client: Client; resource: Resource }

function page(
  c: Context<AppEnv>,
  html: string,
  status: number,
  headers: Record<string, string> = {},
): Response {
  return c.html(html, status as 200, { 'Cache-Control': 'no-store', ...headers })
}

function stopPage(
  c: Context<AppEnv>,
  text: string,
  status = 400,
  facts: MessageFact[] = [],
): Response {
  return page(
    c,
    messagePage({
      title: 'Request stopped',
      text,
      facts,
      link: { href: '/account', label: 'Go to your account' },
    }),
    status,
  )
}

/** Printable parameter names are echoed to help a developer; anything else is not. */
function describeParam(name: string): string {
  return /^[a-z_]{1,40}$/.test(name) ? `"${name}"` : 'a parameter'
}

/**
 * Step one (RFC 6749 §4.1.2.1): until the client and its redirect URI are known to be good,
 * nothing is redirected. Duplicates come first because a doubled `redirect_uri` or `client_id`
 * could make two parsers disagree about where the response goes.
 */
async function trustTarget(
  deps: AuthorizeDeps,
  params: URLSearchParams,
  requester: string,
): Promise<TrustedTarget> {
  for (const name of new Set(params.keys())) {
    if (!REPEATABLE.has(name) && params.getAll(name).length > 1) {
      throw new PageError(
        `The app sent ${describeParam(name)} more than once, so Deputy cannot tell what it meant.`,
        `duplicate-parameter ${name.slice(0, 40)}`,
        null,
      )
    }
  }
  const clientId = params.get('client_id')
  if (!clientId) {
    throw new PageError('The app did not say who it is (client_id is missing).', 'no-client', null)
  }
  // Neither names anything with a NUL in it; refused before either reaches a query.
  if (hasNul(clientId) || hasNul(params.get('redirect_uri') ?? '')) {
    throw new PageError(
      'The app sent a request Deputy cannot read (a NUL character in client_id or redirect_uri).',
      'nul-character',
      null,
    )
  }
  const client =
    clientId.length <= 2048 ? await deps.clients.resolve(clientId, { requester }) : undefined
  if (!client) {
    throw new PageError(
      'This app is not known to Deputy, or it has been disabled.',
      'unknown-client',
      clientId.slice(0, 200),
      [{ term: 'client_id', value: shown(clientId) }],
    )
  }
  const requested = params.get('redirect_uri')
  let redirectUri: string
  if (requested === null) {
    // OAuth 2.1 §4.1.1: redirect_uri may be left out only when just one is registered.
    const [only] = client.redirectUris
    if (client.redirectUris.length !== 1 || only === undefined) {
      throw new PageError(
        'The app did not say where to return (redirect_uri is missing).',
        'no-redirect-uri',
        client.clientId,
        [appFact(client)],
      )
    }
    redirectUri = only
  } else if (matchRedirectUri(client.redirectUris, requested)) {
    redirectUri = requested
  } else {
    throw new PageError(
      'The app asked to return to an address it has not registered, so Deputy stopped here.',
      'redirect-uri-mismatch',
      client.clientId,
      [appFact(client), { term: 'Refused redirect_uri', value: shown(requested) }],
    )
  }
  const state = params.get('state')
  // `state` comes back in the Location of the code or error redirect, form-encoded (one `!` or
  // `é` sent bare becomes three to six characters). Unbounded, a request that fits the server's
  // 16 KB header limit comes back larger than clients read (undici refuses headers over 16 KB)
  // and far larger than reverse proxies' 4–8 KB header buffers, so the person ends on an error
  // the client never sees. Refused here, on a page: an error redirect must carry `state` back
  // (RFC 6749 §4.1.2.1), which is exactly what cannot be done.
  if (state !== null && encodedLength(state) > MAX_STATE_LENGTH) {
    throw new PageError(
      `The app sent a state parameter longer than Deputy returns (${MAX_STATE_LENGTH} characters once encoded), so Deputy stopped here.`,
      'state-too-long',
      client.clientId,
      [appFact(client)],
    )
  }
  return { client, redirectUri, state }
}

/**
 * Longest `state`, as it is written in the redirect's query, that Deputy carries back. A random
 * state is 22–43 characters (oauth4webapi, the MCP SDK); 2 KB leaves room for one that encodes
 * where the client returns to, and keeps the redirect well inside a proxy's 4 KB header buffer.
 */
export const MAX_STATE_LENGTH = 2048

/** Length of a value once `application/x-www-form-urlencoded`, as URLSearchParams writes it. */
function encodedLength(value: string): number {
  return new URLSearchParams({ v: value }).toString().length - 2
}

/** Step two: the rest of the request, where every error goes back to the client. */
async function validateRequest(
  deps: AuthorizeDeps,
  params: URLSearchParams,
  target: TrustedTarget,
): Promise<Validated> {
  const { client } = target
  const invalid = (description: string, reason = description) =>
    new OAuthError('invalid_request', description, { reason })

  // No parameter holds a NUL (and PostgreSQL text cannot): the request is malformed.
  for (const [name, value] of params) {
    if (hasNul(name) || hasNul(value))
      throw invalid('a parameter contains a NUL character (%00)', 'nul-character')
  }

  const responseType = params.get('response_type')
  if (!responseType) throw invalid('response_type is required')
  // OAuth 2.1 §4.1: the authorization code is the only response type (no implicit tokens).
  if (responseType !== 'code')
    throw new OAuthError('unsupported_response_type', 'only response_type=code is supported', {
      reason: `response_type ${responseType.slice(0, 40)}`,
    })
  if (!client.grantTypes.includes('authorization_code'))
    throw new OAuthError(
      'unauthorized_client',
      'this client may not use the authorization code grant',
    )
  const responseMode = params.get('response_mode')
  if (responseMode !== null && responseMode !== 'query')
    throw invalid('only response_mode=query is supported')
  if (params.has('request') || params.has('request_uri'))
    throw invalid('request objects are not supported')

  // RFC 7636 §4.3: a missing method means `plain`, which OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1
  // rule out, so the method must be sent and be S256; PKCE is required for every client.
  const challenge = params.get('code_challenge')
  if (!challenge) throw invalid('code_challenge is required (PKCE with S256)', 'pkce-missing')
  const method = params.get('code_challenge_method')
  if (method !== 'S256')
    throw invalid(
      'code_challenge_method must be S256',
      method ? `pkce-method ${method.slice(0, 20)}` : 'pkce-method-missing',
    )
  if (!S256_CHALLENGE.test(challenge))
    throw invalid('code_challenge must be 43 base64url characters', 'pkce-malformed')

  const scopes = parseScope(params.get('scope'))
  if (scopes === null)
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'scope-malformed' })

  // RFC 8707 §2: the grant is bound to one resource; the configured default when none is sent.
  const resource = await deps.resources.resolve(params.getAll('resource'))
  const unknown = scopes.find((s) => !(s in resource.scopes) && !OIDC_SCOPES.has(s))
  if (unknown !== undefined)
    throw new OAuthError('invalid_scope', `scope ${unknown.slice(0, 64)} is not offered here`, {
      reason: `unknown-scope ${unknown.slice(0, 128)}`,
    })

  const prompt = (params.get('prompt') ?? '').split(' ').filter((p) => p !== '')
  // OIDC Core §3.1.2.1: `none` combined with anything else is an error.
  if (prompt.includes('none') && prompt.length > 1)
    throw invalid('prompt=none cannot be combined with other values')
  const nonce = params.get('nonce')
  if (nonce !== null && nonce.length > 512) throw invalid('nonce is too long')
  // RFC 9396 §2: details are checked against the types the resource accepts; §5 names the error.
  let authorizationDetails: AuthorizationDetail[] = []
  try {
    ;({ details: authorizationDetails } = await deps.detailTypes.check(
      resource.uri,
      params.get('authorization_details') ?? undefined,
    ))
  } catch (err) {
    if (!(err instanceof InvalidAuthorizationDetails)) throw err
    throw new OAuthError('invalid_authorization_details', err.message, {
      reason: 'invalid-authorization-details',
    })
  }

  return {
    client,
    resource,
    request: {
      clientId: client.clientId,
      redirectUri: target.redirectUri,
      redirectUriSent: params.has('redirect_uri'),
      state: target.state,
      codeChallenge: challenge,
      resource: resource.uri,
      scopes,
      nonce,
      prompt,
      ...(authorizationDetails.length > 0 && { authorizationDetails }),
    },
  }
}

/**
 * The consent page's CSP with `form-action` widened to the redirect URI's origin. Chromium checks
 * `form-action` on every redirect after a form submission (CSP3 §6.3.1.2), so `'self'` alone
 * would block the 303 that carries the code back to the client.
 */
function consentPolicy(redirectUri: string): string {
  const url = new URL(redirectUri)
  // A host-source cannot spell an IPv6 literal ([::1]), and a native app's private-use scheme
  // has no host: both fall back to a scheme-source.
  const source =
    (url.protocol === 'https:' || url.protocol === 'http:') && !url.hostname.startsWith('[')
      ? url.origin
      : url.protocol
  return CONTENT_SECURITY_POLICY.replace("form-action 'self'", `form-action 'self' ${source}`)
}

/** What the authorization endpoint uses, besides sessions and consent. */
export interface AuthorizeDeps extends SessionDeps, ConsentDeps {
  config: Pick<ResolvedConfig, 'issuer' | 'sessionTtlSeconds' | 'authorizationRequestRateLimit'>
  clock: Clock
  store: Store
  clients: Pick<Clients, 'resolve'>
  resources: Pick<Resources, 'resolve' | 'get'>
  refusals: Pick<RefusalLog, 'record'>
  detailTypes: Pick<DetailTypes, 'check' | 'list'>
}

/** GET/POST /authorize, the sign-in hand-off, and the consent decision (issue 3 §2). */
export function createAuthorizeRoutes(deps: AuthorizeDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const requests: AuthorizationRequests = createAuthorizationRequests(deps)
  // Each hand-off to the sign-in page stores the request for 10 minutes, for anyone who asks:
  // a bucket per client address, so one address cannot fill the table.
  const handoffs = createRateLimiter({
    limit: deps.config.authorizationRequestRateLimit,
    perSeconds: 60,
  })

  // A person never sees a stack trace or JSON here: one line on a page, the detail in the log.
  app.onError((err, c) => {
    if (isRateLimited(err)) {
      // RFC 6585 §4: too many requests from this address (metadata fetches, sign-in hand-offs).
      return page(
        c,
        messagePage({
          title: 'Too many requests',
          text: `Too many requests came from your network. Try again in ${err.retryAfterSeconds} seconds.`,
          link: { href: '/account', label: 'Go to your account' },
        }),
        429,
        { 'Retry-After': String(err.retryAfterSeconds) },
      )
    }
    c.get('logger')?.error({ err, requestId: c.get('requestId') }, 'authorization failed')
    return stopPage(c, 'Something went wrong on our side. Go back to the app and try again.', 500)
  })

  async function refused(
    c: Context<AppEnv>,
    code: string,
    reason: string,
    clientId: string | null,
  ): Promise<void> {
    // Anyone can send refused requests: repeats are summarised (audit/refusals.ts).
    await deps.refusals.record({
      type: 'authorization.refused',
      actor: clientId ? { type: 'client', id: clientId } : { type: 'system', id: 'authorize' },
      decision: 'deny',
      reason,
      requestId: c.get('requestId') ?? null,
      data: { error: code },
    })
  }

  /**
   * An error response to a trusted target. RFC 9700 §4.11.2: for a client nobody vetted, Deputy
   * redirects only after the person has signed in; before that the page shows the error and lets
   * the person decide whether to go back.
   */
  async function errorToClient(
    c: Context<AppEnv>,
    target: TrustedTarget,
    err: OAuthError,
    signedIn: boolean,
    params?: URLSearchParams,
  ): Promise<Response> {
    await refused(c, err.code, err.reason, target.client.clientId)
    const href = authorizationResponseUrl(target.redirectUri, deps.config.issuer, {
      error: err.code,
      error_description: err.description,
      state: target.state,
    })
    if (signedIn || !UNTRUSTED_KINDS.has(target.client.kind)) {
      c.header('Cache-Control', 'no-store')
      return c.redirect(href, 303)
    }
    const host = new URL(target.redirectUri).host || target.redirectUri
    return page(
      c,
      messagePage({
        title: 'Request stopped',
        text: `${target.client.name} sent a request Deputy cannot accept: ${err.description} (${err.code}).`,
        facts: [appFact(target.client), ...refusedFacts(err, params)],
        link: { href, label: `Go back to ${host}` },
      }),
      400,
    )
  }

  /** Issues the code now and sends the browser back, or asks for consent first. */
  async function proceed(
    c: Context<AppEnv>,
    session: CurrentSession,
    validated: Validated,
    handle: string | null,
    afterSignIn: boolean,
  ): Promise<Response> {
    const { client, resource, request } = validated
    const plan = await planConsent(deps, session.user.id, request)
    if (!plan.ask) {
      // Whatever handle brought us here is used up now, so it cannot yield a second code.
      if (handle !== null && !(await requests.consume(handle))) return expiredPage(c)
      const href = await approveAuthorization(deps, {
        user: session.user,
        client,
        resource,
        request,
        // When the person signed in, for `auth_time` in ID tokens: the session read above.
        authTime: session.signedInAt,
        remembered: plan.alreadyGranted,
        consented: false,
        requestId: c.get('requestId') ?? null,
      })
      c.header('Cache-Control', 'no-store')
      if (afterSignIn) return page(c, returningPage({ clientName: client.name, href }), 200)
      return c.redirect(href, 303)
    }
    if (request.prompt.includes('none')) {
      return errorToClient(
        c,
        { client, redirectUri: request.redirectUri, state: request.state },
        new OAuthError('consent_required', 'the person has not agreed to this request yet'),
        true,
      )
    }
    const h = handle ?? (await requests.save(request))
    const warnings = redirectWarnings(client, request.redirectUri)
    return page(
      c,
      consentPage({
        clientName: client.name,
        selfRegistered: UNTRUSTED_KINDS.has(client.kind),
        resourceName: resource.name,
        resourceUri: resource.uri,
        userEmail: session.user.email,
        ...warnings,
        newScopes: plan.newScopes.map((scope) => ({
          scope,
          sentence: scopeSentence(resource, scope),
        })),
        alreadyGranted: plan.alreadyGranted.map((scope) => ({
          scope,
          sentence: scopeSentence(resource, scope),
        })),
        details: await detailLines(resource.uri, request.authorizationDetails ?? []),
        handle: h,
        csrfToken: session.csrfToken,
      }),
      200,
      { 'Content-Security-Policy': consentPolicy(request.redirectUri) },
    )
  }

  /** Each authorization detail in words (its type's sentence), with its JSON for the curious. */
  async function detailLines(resource: string, details: AuthorizationDetail[]) {
    if (details.length === 0) return []
    const types = await deps.detailTypes.list(resource)
    return details.map((detail) => ({
      sentence: detailSentence(
        types.find((t) => t.type === detail.type),
        detail,
      ),
      json: JSON.stringify(detail, null, 2),
    }))
  }

  function expiredPage(c: Context<AppEnv>): Response {
    return stopPage(
      c,
      'This sign-in request has expired or was already used. Go back to the app and start again.',
    )
  }

  function continueHref(handle: string): string {
    return `/authorize/continue?request=${encodeURIComponent(handle)}`
  }

  async function authorize(c: Context<AppEnv>, params: URLSearchParams): Promise<Response> {
    let target: TrustedTarget
    try {
      target = await trustTarget(deps, params, c.get('clientAddress') ?? 'unknown')
    } catch (err) {
      if (!(err instanceof PageError)) throw err
      await refused(c, 'invalid_request', err.reason, err.clientId)
      return stopPage(c, err.text, 400, err.facts)
    }
    const session = await readSession(deps, c.req.raw)
    let validated: Validated
    try {
      validated = await validateRequest(deps, params, target)
    } catch (err) {
      if (!isOAuthError(err)) throw err
      return errorToClient(c, target, err, session !== null, params)
    }
    if (!session) {
      if (validated.request.prompt.includes('none')) {
        return errorToClient(
          c,
          target,
          new OAuthError('login_required', 'the person is not signed in'),
          false,
        )
      }
      const wait = handoffs.take(c.get('clientAddress') ?? 'unknown')
      if (wait > 0) throw new RateLimited('too many sign-in hand-offs from this address', wait)
      const handle = await requests.save(validated.request)
      c.header('Cache-Control', 'no-store')
      return c.redirect(signInHref(continueHref(handle)), 303)
    }
    return proceed(c, session, validated, null, false)
  }

  // OAuth 2.1 §4.1.1 / OIDC Core §3.1.2.1: GET with a query, or POST with a form body. No CORS
  // headers are ever set here (RFC 9700 §2.6): this is a page for browsers, not for scripts.
  app.get('/authorize', (c) => authorize(c, new URL(c.req.url).searchParams))
  app.post('/authorize', async (c) => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/x-www-form-urlencoded') {
      return stopPage(c, 'This address accepts only a submitted web form.', 415)
    }
    return authorize(c, new URLSearchParams(await c.req.text()))
  })

  /**
   * The stored request a handle names, re-checked against the client and resource as they are
   * now (either may have been disabled or removed meanwhile), or the page saying why not.
   */
  async function reload(c: Context<AppEnv>, handle: string): Promise<Validated | Response> {
    const request = await requests.find(handle)
    if (!request) return expiredPage(c)
    const client = await deps.clients.resolve(request.clientId, {
      requester: c.get('clientAddress') ?? 'unknown',
    })
    if (!client || !matchRedirectUri(client.redirectUris, request.redirectUri)) {
      await refused(c, 'invalid_request', 'client-gone', request.clientId)
      return stopPage(c, 'This app is not known to Deputy, or it has been disabled.', 400, [
        { term: 'client_id', value: shown(request.clientId) },
      ])
    }
    const resource = await deps.resources.get(request.resource)
    if (!resource) {
      await refused(c, 'invalid_target', 'resource-gone', client.clientId)
      return stopPage(c, 'The service this app asked for is no longer available.', 400, [
        appFact(client),
        { term: 'resource', value: shown(request.resource) },
      ])
    }
    return { client, resource, request }
  }

  app.get('/authorize/continue', async (c) => {
    const handle = c.req.query('request') ?? ''
    const loaded = await reload(c, handle)
    if (loaded instanceof Response) return loaded
    const session = await readSession(deps, c.req.raw)
    if (!session) {
      c.header('Cache-Control', 'no-store')
      return c.redirect(signInHref(continueHref(handle)), 303)
    }
    return proceed(c, session, loaded, handle, true)
  })

  app.post('/authorize/consent', async (c) => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/x-www-form-urlencoded') {
      return stopPage(c, 'This address accepts only a submitted web form.', 415)
    }
    const form = new URLSearchParams(await c.req.text())
    for (const name of ['request', 'csrf_token', 'decision']) {
      if (form.getAll(name).length > 1)
        return stopPage(c, 'The form was sent in a way Deputy cannot read. Go back and try again.')
    }
    const handle = form.get('request') ?? ''
    const session = await readSession(deps, c.req.raw)
    if (!session) {
      // Signed out in between: sign in again and see the same question.
      c.header('Cache-Control', 'no-store')
      return c.redirect(signInHref(continueHref(handle)), 303)
    }
    const sent = form.get('csrf_token')
    // RFC 9700 §4.7 / MCP security best practices: the consent form needs its own CSRF token.
    if (!sent || !safeEqual(sent, session.csrfToken)) {
      await refused(c, 'access_denied', 'consent-csrf-mismatch', null)
      return stopPage(
        c,
        'This form has expired or did not come from Deputy. Go back to the app and start again.',
        403,
      )
    }
    const decision = form.get('decision')
    if (decision !== 'allow' && decision !== 'deny') {
      return stopPage(c, 'Choose Allow or Deny.')
    }
    const loaded = await reload(c, handle)
    if (loaded instanceof Response) return loaded
    // Single use: of two submissions of the same form, only one gets this far.
    if (!(await requests.consume(handle))) return expiredPage(c)
    const { client, resource, request } = loaded
    const requestId = c.get('requestId') ?? null
    const href =
      decision === 'allow'
        ? await approveAuthorization(deps, {
            user: session.user,
            client,
            resource,
            request,
            authTime: session.signedInAt,
            consented: true,
            requestId,
          })
        : await denyAuthorization(deps, { user: session.user, client, request, requestId })
    c.header('Cache-Control', 'no-store')
    // RFC 9700 §4.12: after a POST, 303 so the browser does not re-send the form to the client.
    return c.redirect(href, 303)
  })

  return app
}
