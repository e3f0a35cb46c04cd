import { type AccessTokenVerifier, rejected, type TokenCheck } from './types.js'

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/**
 * Checks the `Authorization` header of a request: exactly one `Bearer` credential, verified by
 * `verifier`. Tokens are read from the header only; MCP authorization ("Token Requirements")
 * forbids them in the query string, so a query `access_token` is never looked at.
 */
export async function verifyAccessToken(
  authorization: string | null | undefined,
  verifier: AccessTokenVerifier,
): Promise<TokenCheck> {
  if (authorization === null || authorization === undefined || authorization.trim() === '') {
    return rejected('missing')
  }
  const match = /^([A-Za-z]+) +(.*)$/.exec(authorization.trim())
  if (match === null) return rejected('malformed_header')
  const [, scheme, token] = match as unknown as [string, string, string]
  // Another scheme (Basic, DPoP, …) is no Bearer credential: answer as if none were sent, so the
  // client learns from the challenge which scheme this resource wants (RFC 9110 §11.6.1).
  if (scheme.toLowerCase() !== 'bearer') return rejected('missing')
  // Several Authorization headers arrive joined by ", " and fail this pattern: refused, never guessed.
  if (!B64TOKEN.test(token)) return rejected('malformed_header')
  return verifier(token)
}
