/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

/** Parses a space-separated scope string into distinct tokens, or null when malformed. */
export function parseScope(value: string | undefined | null): string[] | null {
  if (value === undefined || value === null || value === '') return []
  const tokens = value.split(' ')
  if (tokens.some((t) => !SCOPE_TOKEN.test(t))) return null
  return [...new Set(tokens)]
}

/** Joins scopes in a stable order, as stored and as put in tokens. */
export function formatScope(scopes: Iterable<string>): string {
  return [...new Set(scopes)].sort().join(' ')
}

/** True when every scope of `requested` is in `allowed`. */
export function isSubset(requested: Iterable<string>, allowed: Iterable<string>): boolean {
  const set = new Set(allowed)
  for (const s of requested) if (!set.has(s)) return false
  return true
}

/** Scopes that are OpenID Connect's, not a resource's. */
export const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access'])
