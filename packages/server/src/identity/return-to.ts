/**
 * The sign-in form's CSRF secret, bound to the browser before anyone is signed in (double-submit:
 * cookie and hidden field must match). `__Host-` keeps a sibling subdomain from planting one.
 */
export const LOGIN_CSRF_COOKIE = '__Host-deputy-csrf'

/** Where a person lands after signing in when no usable `return_to` was given. */
export const DEFAULT_RETURN_TO = '/account'

/**
 * `value` if it is a path on this server, else the default. Browsers read `//host`, `/\host` and
 * `\\host` as other origins and drop tabs and newlines inside URLs, so anything but a plain
 * `/path` is refused (open redirects: RFC 9700 §4.11).
 */
export function safeReturnTo(value: string | null | undefined): string {
  if (!value || value.length > 2048) return DEFAULT_RETURN_TO
  if (!value.startsWith('/') || value.startsWith('//')) return DEFAULT_RETURN_TO
  if (value.includes('\\') || [...value].some((ch) => ch < ' ' || ch === '\u007f')) {
    return DEFAULT_RETURN_TO
  }
  try {
    const base = 'http://deputy.invalid'
    const url = new URL(value, base)
    const path = `${url.pathname}${url.search}${url.hash}`
    // Dot segments can collapse into `//host` (`/.//evil.example`), so check what comes out too.
    if (url.origin !== base || path.startsWith('//')) return DEFAULT_RETURN_TO
    return path
  } catch {
    return DEFAULT_RETURN_TO
  }
}
