import { OAuthError } from './errors.js'

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

/** Schemes that must never be a redirect target: they run code or read local files. */
const DANGEROUS_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'about:', 'blob:'])

/** True for an http URL on a loopback host (RFC 8252 §7.3). */
export function isLoopbackRedirect(url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)
}

/**
 * Checks a redirect URI a client registers (pre-registration, RFC 7591, or a metadata document):
 * absolute, no fragment (RFC 6749 §3.1.2), no user info, not a dangerous scheme, and http only on
 * loopback (OAuth 2.1 §2.3.1, MCP "Communication Security"). Private-use schemes for native apps
 * (`com.example.app:/callback`, `cursor://…`; RFC 8252 §7.1) are allowed. Returns a reason, or null when fine.
 */
export function redirectUriProblem(uri: string): string | null {
  // The URL parser silently drops tabs, newlines and surrounding spaces; a registered value must
  // be exactly what will be compared, so they are refused rather than cleaned.
  if ([...uri].some((ch) => ch <= ' ' || ch === '\u007f' || ch === '\\'))
    return 'must not contain spaces, control characters or backslashes'
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return 'is not an absolute URI'
  }
  if (uri.includes('#')) return 'must not contain a fragment'
  if (DANGEROUS_SCHEMES.has(url.protocol)) return `uses the forbidden scheme ${url.protocol}`
  if (url.username || url.password) return 'must not contain user information'
  if (uri.includes('*')) return 'must not contain wildcards'
  if (url.protocol === 'http:' && !isLoopbackRedirect(url))
    return 'may use http only on a loopback host'
  // RFC 8252 §7.1 asks apps for reverse-domain private-use schemes, but widely used MCP clients
  // register schemes such as `cursor://` and `vscode://`; refusing them would lock those clients
  // out, and the consent page names the redirect target either way.
  if (!/^[a-z][a-z0-9+.-]*:$/.test(url.protocol)) return 'has a malformed scheme'
  // RFC 9700 §4.1.3: redirect URIs are compared as exact strings, so a registered URI must already
  // be in the form the URL parser produces (no `..` segments, upper-case host, default port).
  if (url.href !== uri && url.href !== `${uri}/`) return `is not in normalised form (${url.href})`
  return null
}

/** Throws `invalid_redirect_uri` naming the first unacceptable redirect URI. */
export function assertRedirectUris(uris: string[]): void {
  if (uris.length === 0)
    throw new OAuthError('invalid_redirect_uri', 'at least one redirect URI is required')
  for (const uri of uris) {
    const problem = redirectUriProblem(uri)
    if (problem)
      throw new OAuthError('invalid_redirect_uri', `redirect URI ${JSON.stringify(uri)} ${problem}`)
  }
}

/**
 * Whether `requested` is one of the client's registered redirect URIs: exact string comparison
 * (RFC 9700 §4.1.3), except that a loopback redirect may use any port (RFC 8252 §7.3). The
 * requested URI must already be in normalised form, so dot segments, case changes, encoded
 * slashes or user info never reach a comparison that could be fooled.
 */
export function matchRedirectUri(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true
  let url: URL
  try {
    url = new URL(requested)
  } catch {
    return false
  }
  if (!isLoopbackRedirect(url) || url.href !== requested || url.username || url.password)
    return false
  url.port = ''
  const portless = url.href
  return registered.some((r) => {
    try {
      const candidate = new URL(r)
      if (!isLoopbackRedirect(candidate) || candidate.href !== r) return false
      candidate.port = ''
      return candidate.href === portless
    } catch {
      return false
    }
  })
}
