import { type AccessTokenVerifier, type FetchLike, jwtVerifier } from '@deputy/mcp'

/**
 * The well-known URLs of an issuer's metadata, in the order MCP clients try them: RFC 8414 §3.1
 * path insertion, then OpenID Connect Discovery with path insertion and path appending.
 */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  const urls = [
    new URL(`/.well-known/oauth-authorization-server${path}`, url.origin).href,
    new URL(`/.well-known/openid-configuration${path}`, url.origin).href,
  ]
  if (path !== '') urls.push(new URL(`${path}/.well-known/openid-configuration`, url.origin).href)
  return urls
}

/** Finds the issuer's `jwks_uri` in its metadata; the metadata's `issuer` must match exactly. */
export async function discoverJwksUri(issuer: string, fetchImpl: FetchLike): Promise<string> {
  const problems: string[] = []
  for (const url of metadataUrls(issuer)) {
    try {
      const response = await fetchImpl(url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(5000),
      })
      if (!response.ok) {
        problems.push(`${url}: HTTP ${response.status}`)
        continue
      }
      const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown }
      // RFC 8414 §3.3: metadata that names another issuer is not this issuer's.
      if (metadata.issuer !== issuer) {
        problems.push(`${url}: issuer is ${JSON.stringify(metadata.issuer)}`)
        continue
      }
      if (typeof metadata.jwks_uri !== 'string') {
        problems.push(`${url}: no jwks_uri`)
        continue
      }
      return metadata.jwks_uri
    } catch (error) {
      problems.push(`${url}: ${(error as Error).message}`)
    }
  }
  throw new Error(`no usable metadata for issuer ${issuer} (${problems.join('; ')})`)
}

/**
 * A JWT verifier for `audience` whose JWKS location comes from the issuer's metadata, looked up on
 * the first token (and again after a failed lookup), so the gateway can start before its
 * authorization server. While the issuer cannot be reached, tokens are answered `unavailable`.
 */
export function issuerJwtVerifier(options: {
  issuer: string
  audience: string
  jwksUri?: string
  fetch?: FetchLike
}): AccessTokenVerifier {
  const fetchImpl = options.fetch ?? globalThis.fetch
  let verifier: Promise<AccessTokenVerifier> | undefined
  const build = async () =>
    jwtVerifier({
      issuer: options.issuer,
      audience: options.audience,
      jwksUri: options.jwksUri ?? (await discoverJwksUri(options.issuer, fetchImpl)),
      fetch: fetchImpl,
    })
  return async (token) => {
    verifier ??= build()
    let verify: AccessTokenVerifier
    try {
      verify = await verifier
    } catch (error) {
      verifier = undefined
      return { ok: false, reason: 'unavailable', detail: (error as Error).message }
    }
    return verify(token)
  }
}
