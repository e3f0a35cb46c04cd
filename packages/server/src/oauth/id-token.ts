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
}

/**
 * Mints an OpenID Connect ID token (Core §2, §3.1.3.6): `typ: JWT`, audience the client, the
 * request's nonce and the time the person signed in; profile and email claims follow the scopes
 * (Core §5.4). `at_hash` is left out: it is optional for the code flow (Core §3.1.3.6).
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
