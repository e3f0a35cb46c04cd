/**
 * The requesting client as far as the check needs it. Declared here, not imported from oauth/:
 * the token exchange in oauth/ builds on the vault, and folders must not import each other both ways.
 */
export interface ReturnToClient {
  name: string
  status: 'active' | 'disabled'
  redirectUris: string[]
}

/** Why a connect link's `return_to` was refused, in a sentence for the person. */
export type ReturnToCheck = { ok: true; returnTo: string | null } | { ok: false; reason: string }

const MAX_RETURN_TO = 2048

/** A path on Deputy (`/account/…`), never `//host` or anything a browser reads as another origin. */
function deputyPath(value: string): string | null {
  if (!value.startsWith('/') || value.startsWith('//')) return null
  if (value.includes('\\') || [...value].some((ch) => ch < ' ' || ch === '\u007f')) return null
  try {
    const base = 'http://deputy.invalid'
    const url = new URL(value, base)
    const path = `${url.pathname}${url.search}${url.hash}`
    // Dot segments can collapse into `//host` (`/.//evil.example`): check what comes out too.
    if (url.origin !== base || path.startsWith('//')) return null
    return path
  } catch {
    return null
  }
}

/**
 * Where a connect flow may send the browser back (issue 12 §3): a path on Deputy, or an
 * absolute URL exactly equal to one of the requesting client's registered redirect URIs (the
 * client named by `client_id`, active). Anything else is refused, never silently replaced, so
 * the agent that handed out a wrong link learns of it.
 */
export function checkReturnTo(
  returnTo: string | undefined,
  client: ReturnToClient | undefined,
  clientId: string | undefined,
): ReturnToCheck {
  if (returnTo === undefined || returnTo === '') return { ok: true, returnTo: null }
  if (returnTo.length > MAX_RETURN_TO)
    return { ok: false, reason: 'The return address is too long.' }
  if (returnTo.startsWith('/')) {
    const path = deputyPath(returnTo)
    return path
      ? { ok: true, returnTo: path }
      : { ok: false, reason: 'The return address is not a page of Deputy.' }
  }
  if (clientId === undefined)
    return {
      ok: false,
      reason:
        'The return address is another site, and the link does not say which app it belongs to.',
    }
  if (client?.status !== 'active')
    return { ok: false, reason: 'The app the link names is not known to Deputy.' }
  // Exact string comparison, as for redirect URIs at /authorize (RFC 9700 §4.1.3).
  if (!client.redirectUris.includes(returnTo))
    return { ok: false, reason: 'The return address is not one the app registered with Deputy.' }
  return { ok: true, returnTo }
}
