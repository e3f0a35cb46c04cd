import { KeyObject, sign } from 'node:crypto'
import { createLocalJWKSet, type JWTPayload, jwtVerify } from 'jose'
import type { DeputyDeps } from '../deputy.js'
import type { User } from '../identity/users.js'
import type { ActiveSigningKey } from '../keys/types.js'
import { randomToken } from '../lib/random.js'
import type { Client } from './clients.js'
import type { Resource } from './resources.js'
import { formatScope } from './scopes.js'

/** RFC 9068 §2.1: the `typ` header of a JWT access token. */
export const ACCESS_TOKEN_TYP = 'at+jwt'

/** What an access token is minted for. */
export interface AccessTokenInput {
  client: Client
  /** The person (authorization code, refresh) or null when the client acts as itself. */
  user: User | null
  resource: Resource
  scopes: string[]
  /** The grant it came from; introspection reports the token inactive once the grant ends. */
  grantId: string | null
}

export interface MintedAccessToken {
  token: string
  jti: string
  /** Seconds until it expires (the `expires_in` of the token response). */
  expiresIn: number
  /** Epoch seconds. */
  exp: number
  /** The granted scope, space-separated, as the token and the response carry it. */
  scope: string
}

/** The claims of a verified Deputy access token. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string
  sub: string
  aud: string | string[]
  client_id: string
  scope?: string
  jti: string
  iat: number
  exp: number
  grant_id?: string
}

/** The value of a person's claim named in a resource's claims template, or undefined. */
function personClaim(user: User, name: string): unknown {
  switch (name) {
    case 'name':
      return user.name
    case 'email':
      return user.email
    case 'roles':
      return user.roles
    case 'permissions':
      return user.permissions
    default:
      return user.claims[name]
  }
}

/**
 * Mints an RFC 9068 JWT access token: one signature with the active key. The person's claims come
 * first so that the protocol claims set after them can never be overridden by a custom claim.
 */
export async function mintAccessToken(
  deps: Pick<DeputyDeps, 'config' | 'clock' | 'signingKeys'>,
  input: AccessTokenInput,
): Promise<MintedAccessToken> {
  const key = await deps.signingKeys.active()
  const iat = Math.floor(deps.clock.now().getTime() / 1000)
  const expiresIn = deps.config.accessTokenTtlSeconds
  const jti = randomToken(16)
  const claims: Record<string, unknown> = {}
  if (input.user) {
    for (const name of input.resource.claimsTemplate) {
      const value = personClaim(input.user, name)
      if (value !== undefined) claims[name] = value
    }
  }
  // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; scope per §2.2.3.
  claims.iss = deps.config.issuer
  claims.sub = input.user ? input.user.id : input.client.clientId
  claims.aud = input.resource.uri
  claims.client_id = input.client.clientId
  claims.scope = formatScope(input.scopes)
  claims.iat = iat
  claims.exp = iat + expiresIn
  claims.jti = jti
  if (input.grantId) claims.grant_id = input.grantId
  const token = signCompactJwt(key, { alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP }, claims)
  return { token, jti, expiresIn, exp: iat + expiresIn, scope: claims.scope as string }
}

/** The key as a node:crypto KeyObject, converted once per key. */
const keyObjects = new WeakMap<CryptoKey, KeyObject>()

/**
 * Signs a JWT (RFC 7515 compact serialisation) in this thread with node:crypto: the same bytes
 * jose's `SignJWT` produces, without WebCrypto's hand-off to the libuv pool and back, which costs
 * the event loop more than the signature itself (shared/research/token-endpoint-anchors).
 * ES256 signatures are r‖s (RFC 7518 §3.4), hence `ieee-p1363`.
 */
export function signCompactJwt(
  key: ActiveSigningKey,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): string {
  let keyObject = keyObjects.get(key.privateKey)
  if (!keyObject) {
    keyObject = KeyObject.from(key.privateKey)
    keyObjects.set(key.privateKey, keyObject)
  }
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const signature =
    key.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: keyObject, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(input), keyObject)
  return `${input}.${signature.toString('base64url')}`
}

/** True when a string has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
}

/**
 * Verifies an access token Deputy issued: signature by a published key, `typ: at+jwt` (an ID
 * token or client assertion is not an access token, RFC 9068 §4), issuer and expiry. Returns the
 * claims, or undefined when it is not a valid Deputy access token. Revocation is `inactiveReason`.
 */
export async function verifyAccessToken(
  deps: Pick<DeputyDeps, 'config' | 'clock' | 'signingKeys'>,
  token: string,
): Promise<AccessTokenClaims | undefined> {
  if (!looksLikeJwt(token)) return undefined
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(await deps.signingKeys.jwks()), {
      issuer: deps.config.issuer,
      typ: ACCESS_TOKEN_TYP,
      algorithms: ['ES256', 'EdDSA'],
      currentDate: deps.clock.now(),
      requiredClaims: ['sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
    })
    if (typeof payload.client_id !== 'string' || typeof payload.jti !== 'string') return undefined
    return payload as AccessTokenClaims
  } catch {
    return undefined
  }
}

/**
 * Why a verified access token no longer counts, or null while it does (RFC 7662 §2.2): its jti was
 * revoked, its grant ended, its client was disabled or deleted, or its person was disabled.
 */
export async function inactiveReason(
  deps: Pick<DeputyDeps, 'db' | 'clients' | 'grants' | 'users'>,
  claims: AccessTokenClaims,
): Promise<string | null> {
  const revoked = await deps.db
    .selectFrom('revoked_access_tokens')
    .select('jti')
    .where('jti', '=', claims.jti)
    .executeTakeFirst()
  if (revoked) return 'token-revoked'
  if (claims.grant_id && !(await deps.grants.isActive(claims.grant_id))) return 'grant-revoked'
  if (!(await deps.clients.resolve(claims.client_id))) return 'client-unavailable'
  if (claims.sub !== claims.client_id) {
    const user = await deps.users.findById(claims.sub)
    if (user?.status !== 'active') return 'user-unavailable'
  }
  return null
}
