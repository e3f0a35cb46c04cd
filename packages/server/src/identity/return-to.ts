/**
 * The sign-in form's CSRF secret, bound to the browser before anyone is signed in (double-submit:
 * cookie and hidden field must match). `__Host-` keeps a sibling subdomain from planting one.
 */
export const LOGIN_CSRF_COOKIE = '__Host-deputy-csrf'

/** Where a person lands after signing in when no usable `return_to` was given. */
export const DEFAULT_RETURN_TO = '/account'

/** The longest `return_to` sign-in follows (`safeReturnTo`); a longer one is not carried either. */
export const MAX_RETURN_TO_LENGTH = 2048

/**
 * The sign-in page's address, coming back to `returnTo` (a path on this server) afterwards. A
 * `returnTo` longer than sign-in would follow is not carried: its path alone when that fits,
 * else nothing. The page's own query is the caller's to make up, and echoed whole (three times
 * its length once percent-encoded) it made `Location` headers clients refuse: a 6 KB query gave
 * an 18 KB header, past undici's 16 KB (found by fuzzing, test/fuzz/routes.test.ts).
 * `fresh` asks sign-in to ask again even with a session (a recent sign-in, inbox approvals).
 */
export function signInHref(returnTo: string, options: { fresh?: boolean } = {}): string {
  let back = returnTo
  if (back.length > MAX_RETURN_TO_LENGTH) {
    const query = back.search(/[?#]/)
    back = query < 0 ? '' : back.slice(0, query)
    if (back.length > MAX_RETURN_TO_LENGTH) back = ''
  }
  const query: string[] = []
  if (options.fresh) query.push('fresh')
  if (back !== '' && back !== DEFAULT_RETURN_TO) query.push(`return_to=${encodeURIComponent(back)}`)
  return query.length === 0 ? '/login' : `/login?${query.join('&')}`
}

/**
 * `value` if it is a path on this server, else the default. Browsers read `//host`, `/\host` and
 * `\\host` as other origins and drop tabs and newlines inside URLs, so anything but a plain
 * `/path` is refused (open redirects: RFC 9700 §4.11).
 */
export function safeReturnTo(value: string | null | undefined): string {
  if (!value || value.length > MAX_RETURN_TO_LENGTH) return DEFAULT_RETURN_TO
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
