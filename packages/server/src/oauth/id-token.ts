import { createHash } from 'node:crypto'
import { SignJWT } from 'jose'
import type { User } from '../identity/users.js'
import type { TokenSigningDeps } from './access-token.js'

/** What an ID token is minted for (OpenID Connect Core §2). */
export interface IdTokenInput {
  clientId: string
  user: User
  scopes: string[]
  nonce: string | null
  /** When the person authenticated, epoch ms. */
  authTime: number
  /** The access token issued with it, bound by `at_hash` (Core §3.1.3.6). */
  accessToken?: string
}

/**
 * The hash an ID token's `*_hash` claims use for its `alg` (Core §3.1.3.6: the hash of the JWS
 * algorithm). EdDSA names no hash of its own; for Ed25519, the one curve Deputy signs with, the
 * OpenID Connect WG settled on SHA-512 (OpenID Connect Token Hash Algorithms 1.0, connect#1125).
 */
const TOKEN_HASH: Record<'ES256' | 'EdDSA', 'sha256' | 'sha512'> = {
  ES256: 'sha256',
  EdDSA: 'sha512',
}

/** Core §3.1.3.6 `at_hash`: base64url of the left-most half of the hash of the token's octets. */
export function tokenHash(alg: 'ES256' | 'EdDSA', value: string): string {
  const digest = createHash(TOKEN_HASH[alg]).update(value, 'ascii').digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

/**
 * Mints an OpenID Connect ID token (Core §2, §3.1.3.6): `typ: JWT`, audience the client, the
 * request's nonce and the time the person signed in; profile and email claims follow the scopes
 * (Core §5.4). `at_hash` binds the access token issued with it (optional for the code flow,
 * Core §3.1.3.6, but a client that checks it then knows both came from one response).
 */
export async function mintIdToken(deps: TokenSigningDeps, input: IdTokenInput): Promise<string> {
  const key = await deps.signingKeys.active()
  const iat = Math.floor(deps.clock.now().getTime() / 1000)
  const claims: Record<string, unknown> = {
    iss: deps.config.issuer,
    sub: input.user.id,
    aud: input.clientId,
    azp: input.clientId,
    iat,
    exp: iat + deps.config.accessTokenTtlSeconds,
    auth_time: Math.floor(input.authTime / 1000),
  }
  if (input.nonce) claims.nonce = input.nonce
  if (input.accessToken) claims.at_hash = tokenHash(key.alg, input.accessToken)
  Object.assign(claims, profileClaims(input.user, input.scopes))
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .sign(key.privateKey)
}

/** Claims released per scope (OpenID Connect Core §5.4): `profile` → name, `email` → email. */
export function profileClaims(user: User, scopes: string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {}
  if (scopes.includes('profile')) claims.name = user.name
  if (scopes.includes('email')) claims.email = user.email
  return claims
}
