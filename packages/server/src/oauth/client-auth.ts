import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JSONWebKeySet,
  jwtVerify,
} from 'jose'
import type { Kysely } from 'kysely'
import type { ResolvedConfig } from '../config/load.js'
import type { Clock } from '../lib/clock.js'
import type { Form } from '../lib/form.js'
import { isRateLimited } from '../lib/rate-limit.js'
import type { ClientAuthMethod, Database } from '../store/schema.js'
import { type ClientJwks, ClientJwksUnavailable } from './client-jwks.js'
import type { Client, Clients } from './clients.js'
import { OAuthError } from './errors.js'

/** RFC 7523 §2.2: the one client assertion type Deputy accepts. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** Signature algorithms accepted in client assertions; never `none` or a shared-secret (HS*) one. */
export const CLIENT_ASSERTION_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256']

/** An assertion may not be valid for longer than this from now (a far-future `exp` is refused). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 600

/** Clock skew tolerated between the client and Deputy when checking `exp`, `nbf` and `iat`. */
const ASSERTION_CLOCK_TOLERANCE_SECONDS = 30

/** A client that proved who it is, and how. */
export interface AuthenticatedClient {
  client: Client
  method: ClientAuthMethod
}

/** What the request presented, before anything is checked. */
interface Presented {
  method: ClientAuthMethod
  clientId: string
  secret?: string
  assertion?: string
}

/** Where the request came in: the audiences a client assertion may name. */
export interface ClientAuthContext {
  /** The URL of the endpoint being called (token, revocation, introspection). */
  endpointUrl: string
  /**
   * The caller's client address (`unknown` when the host cannot tell): the metadata document
   * fetches a URL client_id triggers are rate-limited per requester.
   */
  requester: string
}

/** What authenticating a client reads: the registry, the issuer, the time, the spent assertion ids. */
export interface ClientAuthDeps {
  clients: Pick<Clients, 'resolve' | 'verifySecret'>
  config: Pick<ResolvedConfig, 'issuer'>
  clock: Clock
  db: Kysely<Database>
  /** Key sets of clients that publish a `jwks_uri` (fetched, cached; client-jwks.ts). */
  clientJwks: Pick<ClientJwks, 'keysFor'>
}

type Verifier = (
  deps: ClientAuthDeps,
  client: Client,
  presented: Presented,
  context: ClientAuthContext,
) => Promise<void>

function refuse(reason: string, description = 'client authentication failed'): OAuthError {
  return new OAuthError('invalid_client', description, { reason })
}

/** RFC 6749 §2.3.1: the Basic credentials are form-encoded before being joined by a colon. */
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '))
}

function parseBasic(header: string): { clientId: string; secret: string } {
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) throw refuse('malformed-basic-credentials')
  let credentials: { clientId: string; secret: string }
  try {
    credentials = {
      clientId: formDecode(decoded.slice(0, colon)),
      secret: formDecode(decoded.slice(colon + 1)),
    }
  } catch {
    throw refuse('malformed-basic-credentials')
  }
  // No client id or secret holds a NUL; refused here, it never reaches a query (PostgreSQL text
  // cannot hold one) or the audit chain.
  if (credentials.clientId.includes('\u0000') || credentials.secret.includes('\u0000')) {
    throw refuse('malformed-basic-credentials')
  }
  return credentials
}

/**
 * Whether the request carries client credentials (Basic, a secret or a client assertion), not
 * merely a `client_id`: a workload's jwt-bearer grant without them is authenticated by its
 * assertion alone (grants/jwt-bearer.ts).
 */
export function presentsClientCredentials(authorization: string | undefined, form: Form): boolean {
  const basic = authorization !== undefined && /^basic /i.test(authorization)
  return (
    basic ||
    form.has('client_secret') ||
    form.has('client_assertion') ||
    form.has('client_assertion_type')
  )
}

/**
 * Works out which method the request uses. RFC 6749 §2.3: a client MUST NOT use more than one
 * authentication method in a request, so two at once is refused rather than one picked.
 */
function presentedCredentials(authorization: string | undefined, form: Form): Presented {
  const basic = authorization !== undefined && /^basic /i.test(authorization)
  const post = form.has('client_secret')
  const jwt = form.has('client_assertion') || form.has('client_assertion_type')
  if (Number(basic) + Number(post) + Number(jwt) > 1) {
    throw refuse('multiple-auth-methods', 'use exactly one client authentication method')
  }
  const bodyClientId = form.get('client_id')
  let presented: Presented
  if (basic) {
    const { clientId, secret } = parseBasic(authorization)
    presented = { method: 'client_secret_basic', clientId, secret }
  } else if (post) {
    if (!bodyClientId) throw refuse('client-secret-without-client-id')
    presented = {
      method: 'client_secret_post',
      clientId: bodyClientId,
      secret: form.get('client_secret'),
    }
  } else if (jwt) {
    // RFC 7521 §4.2: the assertion type must be exactly the JWT bearer one.
    if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION_TYPE) {
      throw refuse('unsupported-client-assertion-type')
    }
    const assertion = form.get('client_assertion')
    if (!assertion) throw refuse('missing-client-assertion')
    // The client is named by the (not yet verified) `sub`; it must equal `iss` and the body's
    // client_id once verified (RFC 7523 §3).
    let sub: unknown
    try {
      sub = decodeJwt(assertion).sub
    } catch {
      throw refuse('malformed-client-assertion')
    }
    const clientId = bodyClientId ?? (typeof sub === 'string' ? sub : undefined)
    if (!clientId) throw refuse('client-assertion-without-sub')
    presented = { method: 'private_key_jwt', clientId, assertion }
  } else {
    if (!bodyClientId) throw refuse('no-client-authentication')
    presented = { method: 'none', clientId: bodyClientId }
  }
  // RFC 6749 §2.3.1 / RFC 7523 §3: a client_id in the body must name the authenticated client.
  if (bodyClientId !== undefined && bodyClientId !== presented.clientId) {
    throw refuse('client-id-mismatch')
  }
  // A form value was checked by the form parser; an assertion's `sub` was not.
  if (presented.clientId.includes('\u0000')) throw refuse('malformed-client-id')
  return presented
}

async function verifySecret(
  deps: ClientAuthDeps,
  client: Client,
  presented: Presented,
): Promise<void> {
  if (!presented.secret) throw refuse('empty-client-secret')
  if (!(await deps.clients.verifySecret(client.clientId, presented.secret))) {
    throw refuse('wrong-client-secret')
  }
}

/**
 * The client's public keys: its registered `jwks`, or the set at its `jwks_uri` (RFC 7591 §2:
 * one or the other), refetched when the assertion names a `kid` the cached set lacks.
 */
async function clientKeys(
  deps: ClientAuthDeps,
  client: Client,
  assertion: string,
): Promise<JSONWebKeySet> {
  if (client.jwks && client.jwks.keys.length > 0) return client.jwks as unknown as JSONWebKeySet
  if (!client.jwksUri) throw refuse('client-has-no-jwks')
  let kid: string | undefined
  try {
    const header = decodeProtectedHeader(assertion)
    kid = typeof header.kid === 'string' ? header.kid : undefined
  } catch {
    throw refuse('malformed-client-assertion')
  }
  try {
    return await deps.clientJwks.keysFor(client.jwksUri, kid)
  } catch (err) {
    if (err instanceof ClientJwksUnavailable) throw refuse(`client-jwks-unavailable ${err.reason}`)
    throw err
  }
}

/** RFC 7523 §3: a signed assertion naming the client, for this server, short-lived, used once. */
async function verifyAssertion(
  deps: ClientAuthDeps,
  client: Client,
  presented: Presented,
  context: ClientAuthContext,
): Promise<void> {
  const jwks = await clientKeys(deps, client, presented.assertion as string)
  const now = deps.clock.now()
  let payload: { exp?: number; jti?: string }
  try {
    const keys = createLocalJWKSet(jwks)
    ;({ payload } = await jwtVerify(presented.assertion as string, keys, {
      algorithms: CLIENT_ASSERTION_ALGS,
      issuer: client.clientId,
      subject: client.clientId,
      audience: [deps.config.issuer, `${deps.config.issuer}/token`, context.endpointUrl],
      requiredClaims: ['exp', 'jti'],
      currentDate: now,
      clockTolerance: ASSERTION_CLOCK_TOLERANCE_SECONDS,
    }))
  } catch (err) {
    throw refuse(`client-assertion-${(err as { code?: string }).code ?? 'invalid'}`)
  }
  const nowSeconds = Math.floor(now.getTime() / 1000)
  const exp = payload.exp as number
  if (exp > nowSeconds + MAX_ASSERTION_LIFETIME_SECONDS) {
    throw refuse('client-assertion-exp-too-far')
  }
  const jti = payload.jti as string
  if (jti.length > 256) throw refuse('client-assertion-jti-too-long')
  // Remember the jti until the assertion expires; a second insert of the same pair is a replay.
  // The primary key makes this atomic across concurrent requests and replicas.
  const inserted = await deps.db
    .insertInto('client_assertion_jtis')
    .values({
      client_id: client.clientId,
      jti,
      expires_at: (exp + ASSERTION_CLOCK_TOLERANCE_SECONDS) * 1000,
    })
    .onConflict((oc) => oc.columns(['client_id', 'jti']).doNothing())
    .executeTakeFirst()
  // Expired ids go with the sweep (store/sweep.ts): their assertions fail the `exp` check anyway.
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) {
    throw refuse('client-assertion-replayed')
  }
}

/** One verifier per registered method (RFC 6749 §2.3, RFC 7523 §2.2); `none` proves nothing. */
const VERIFIERS = new Map<ClientAuthMethod, Verifier>([
  ['none', async () => {}],
  ['client_secret_basic', verifySecret],
  ['client_secret_post', verifySecret],
  ['private_key_jwt', verifyAssertion],
])

/** The named client; a metadata document fetch past the rate limit is a 429 (RFC 6585 §4). */
async function resolveClient(
  deps: ClientAuthDeps,
  clientId: string,
  requester: string,
): Promise<Client | undefined> {
  try {
    return await deps.clients.resolve(clientId, { requester })
  } catch (err) {
    if (!isRateLimited(err)) throw err
    throw new OAuthError(
      'temporarily_unavailable',
      'too many requests naming clients Deputy has not seen before; try again later',
      {
        reason: 'metadata-fetch-rate-limited',
        status: 429,
        headers: { 'Retry-After': String(err.retryAfterSeconds) },
      },
    )
  }
}

/**
 * Authenticates the client of a token, revocation or introspection request: exactly one method,
 * the one the client registered, and a body `client_id` that names the same client.
 */
export async function authenticateClient(
  deps: ClientAuthDeps,
  authorization: string | undefined,
  form: Form,
  context: ClientAuthContext,
): Promise<AuthenticatedClient> {
  try {
    return await authenticate(deps, authorization, form, context)
  } catch (err) {
    throw withBasicChallenge(err, authorization)
  }
}

/** The HTTP Basic challenge of a refused client that tried Basic authentication. */
export const BASIC_CHALLENGE = 'Basic realm="deputy", charset="UTF-8"'

/**
 * RFC 6749 §5.2: when the client tried to authenticate with the Authorization header, the answer
 * MUST be 401 with a `WWW-Authenticate` challenge of that scheme. Any other failed client
 * authentication is a plain 400 `invalid_client`: a 401 would need a challenge (RFC 9110 §15.5.2),
 * and a Basic one would invite a client that never used Basic to send its secret that way.
 */
export function withBasicChallenge(err: unknown, authorization: string | undefined): unknown {
  if (!(err instanceof OAuthError) || err.code !== 'invalid_client') return err
  if (authorization === undefined || !/^basic /i.test(authorization)) return err
  return new OAuthError('invalid_client', err.description, {
    reason: err.reason,
    status: 401,
    headers: { ...err.headers, 'WWW-Authenticate': BASIC_CHALLENGE },
  })
}

async function authenticate(
  deps: ClientAuthDeps,
  authorization: string | undefined,
  form: Form,
  context: ClientAuthContext,
): Promise<AuthenticatedClient> {
  const presented = presentedCredentials(authorization, form)
  const client = await resolveClient(deps, presented.clientId, context.requester)
  if (!client) throw refuse('unknown-or-disabled-client')
  if (client.tokenEndpointAuthMethod !== presented.method) {
    throw refuse(
      `auth-method-not-registered registered=${client.tokenEndpointAuthMethod} presented=${presented.method}`,
    )
  }
  const verify = VERIFIERS.get(presented.method) as Verifier
  await verify(deps, client, presented, context)
  return { client, method: presented.method }
}

/** The client a request names, before it is authenticated (for audit records of refusals). */
export function claimedClientId(
  authorization: string | undefined,
  form: Form | undefined,
): string | undefined {
  const fromBody = form?.get('client_id')
  if (fromBody) return fromBody
  if (authorization && /^basic /i.test(authorization)) {
    try {
      return parseBasic(authorization).clientId
    } catch {
      return undefined
    }
  }
  return undefined
}
