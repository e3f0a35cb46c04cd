import { KeyObject, sign } from 'node:crypto'
import { createLocalJWKSet, type JWTPayload, jwtVerify } from 'jose'
import type { Kysely } from 'kysely'
import type { ResolvedConfig } from '../config/load.js'
import type { User, Users } from '../identity/users.js'
import type { ActiveSigningKey, SigningKeys } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { randomToken } from '../lib/random.js'
import type { Database } from '../store/schema.js'
import type { Client, Clients } from './clients.js'
import type { Grants } from './grants.js'
import type { Resource } from './resources.js'
import { formatScope } from './scopes.js'

/** What minting and verifying Deputy's JWTs reads: the issuer, the lifetime, the keys, the time. */
export interface TokenSigningDeps {
  config: Pick<ResolvedConfig, 'issuer' | 'accessTokenTtlSeconds'>
  clock: Clock
  signingKeys: SigningKeys
}

/** What telling whether a verified access token still counts reads. */
export interface TokenStatusDeps {
  db: Kysely<Database>
  clients: Pick<Clients, 'resolve'>
  grants: Pick<Grants, 'isActive'>
  users: Pick<Users, 'findById'>
}

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
  /** RFC 9396 §9.1: what exactly was authorized (an approval's details), carried as a claim. */
  authorizationDetails?: readonly Record<string, unknown>[]
  /** The approval the token was issued for (CIBA), so a resource server can name it. */
  approvalId?: string
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`). */
  dpopJkt?: string | undefined
  /** RFC 8693 §4.1: who acts for `sub`, the current actor outermost (token exchange). */
  act?: ActClaim | undefined
  /** RFC 8693 §4.4: who may act for `sub` with this token. */
  mayAct?: { sub: string } | undefined
  /** Epoch seconds the token may not outlive (an exchanged token ends with its subject token). */
  notAfter?: number | undefined
}

/** RFC 8693 §4.1 `act`: an actor, with the actor before it nested inside. */
export interface ActClaim {
  sub: string
  act?: ActClaim
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
  /** RFC 9449 §5: `DPoP` for a token bound to a key, otherwise `Bearer`. */
  tokenType: 'Bearer' | 'DPoP'
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
  /** RFC 9449 §6.1: the key the token is bound to. */
  cnf?: { jkt?: string }
  /** RFC 8693 §4.1: the actors, when the token came from a delegation exchange. */
  act?: unknown
  /** RFC 8693 §4.4: who may act for the subject with this token. */
  may_act?: unknown
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
  deps: TokenSigningDeps,
  input: AccessTokenInput,
): Promise<MintedAccessToken> {
  const key = await deps.signingKeys.active()
  const iat = Math.floor(deps.clock.now().getTime() / 1000)
  const expiresIn =
    input.notAfter === undefined
      ? deps.config.accessTokenTtlSeconds
      : Math.max(0, Math.min(deps.config.accessTokenTtlSeconds, input.notAfter - iat))
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
  if (input.authorizationDetails && input.authorizationDetails.length > 0)
    claims.authorization_details = input.authorizationDetails
  if (input.approvalId) claims.approval_id = input.approvalId
  if (input.dpopJkt) claims.cnf = { jkt: input.dpopJkt }
  if (input.act) claims.act = input.act
  if (input.mayAct) claims.may_act = input.mayAct
  const token = signCompactJwt(key, ACCESS_TOKEN_TYP, claims)
  return {
    token,
    jti,
    expiresIn,
    exp: iat + expiresIn,
    scope: claims.scope as string,
    tokenType: input.dpopJkt ? 'DPoP' : 'Bearer',
  }
}

/** A signing key as node:crypto wants it, and the encoded JOSE headers it signs under. */
interface KeySigner {
  keyObject: KeyObject
  /** base64url(JSON(header)) per `typ`: the header of every token of a key and type is the same. */
  headers: Map<string, string>
}

/** Converted once per key (a rotation brings a new CryptoKey, so an old entry just goes away). */
const signers = new WeakMap<CryptoKey, KeySigner>()

function signerFor(key: ActiveSigningKey): KeySigner {
  let signer = signers.get(key.privateKey)
  if (!signer) {
    signer = { keyObject: KeyObject.from(key.privateKey), headers: new Map() }
    signers.set(key.privateKey, signer)
  }
  return signer
}

/**
 * Signs a JWT (RFC 7515 compact serialisation) with node:crypto: the same bytes jose's `SignJWT`
 * produces. Signed in place, not on the libuv pool: the hand-off (the callback form of `sign`)
 * takes most of the signature (about 25 µs for ES256) off the event loop, but costs about 10 µs
 * more CPU in all (a job, a thread switch, a callback), and when every core is busy — the load
 * the token endpoint is measured under (bench/token-endpoint) — CPU bounds tokens per second.
 * WebCrypto (jose) hands off too, with more argument normalisation on top
 * (shared/research/token-endpoint-anchors). ES256 signatures are r‖s (RFC 7518 §3.4), hence
 * `ieee-p1363`.
 */
export function signCompactJwt(
  key: ActiveSigningKey,
  typ: string,
  claims: Record<string, unknown>,
): string {
  const signer = signerFor(key)
  let header = signer.headers.get(typ)
  if (header === undefined) {
    header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ })).toString('base64url')
    signer.headers.set(typ, header)
  }
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const signature =
    key.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: signer.keyObject, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(input), signer.keyObject)
  return `${input}.${signature.toString('base64url')}`
}

/** True when a string has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
}

/**
 * The key set verification uses, kept while the published keys stay the same: jose imports each
 * key once per set (a WebCrypto import per token otherwise, the larger part of a verification).
 */
let localKeys: { text: string; set: ReturnType<typeof createLocalJWKSet> } | undefined

async function publishedKeySet(
  deps: TokenSigningDeps,
): Promise<ReturnType<typeof createLocalJWKSet>> {
  const jwks = await deps.signingKeys.jwks()
  const text = JSON.stringify(jwks)
  if (localKeys?.text !== text) localKeys = { text, set: createLocalJWKSet(jwks) }
  return localKeys.set
}

/**
 * Verifies an access token Deputy issued: signature by a published key, `typ: at+jwt` (an ID
 * token or client assertion is not an access token, RFC 9068 §4), issuer and expiry. Returns the
 * claims, or undefined when it is not a valid Deputy access token. Revocation is `inactiveReason`.
 */
export async function verifyAccessToken(
  deps: TokenSigningDeps,
  token: string,
): Promise<AccessTokenClaims | undefined> {
  if (!looksLikeJwt(token)) return undefined
  try {
    const { payload } = await jwtVerify(token, await publishedKeySet(deps), {
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
  deps: TokenStatusDeps,
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
