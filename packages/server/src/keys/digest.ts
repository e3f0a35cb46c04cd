import { createHmac, hkdfSync } from 'node:crypto'
import type { MasterKey } from './master-key.js'

/** The purpose of the digest of typed emails (`login.failed`, the sign-in throttle). */
export const LOGIN_EMAIL_DIGEST = 'login email'

/** An email as sign-in keys it: trimmed, lower-case, at most 320 characters (RFC 5321). */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase().slice(0, 320)
}

/**
 * A keyed digest for values that must be recognisable but not readable, such as a typed email
 * that matches no account: people type passwords into the email field, and a plain SHA-256 of a
 * short string is undone by trying candidates, by anyone who reads an audit export. An HMAC with
 * a key derived (HKDF-SHA-256) from the master key for this one `purpose` cannot be undone
 * without the master key, and still gives the same value for the same input, so repeated attempts
 * line up in the log and the sign-in throttle. Returns `(value) => 'hmac-sha-256:<hex>'`.
 */
export function createKeyedDigest(
  masterKey: MasterKey,
  purpose: string,
): (value: string) => string {
  const key = Buffer.from(hkdfSync('sha256', masterKey.key, '', `deputy digest: ${purpose}`, 32))
  return (value) => `hmac-sha-256:${createHmac('sha256', key).update(value, 'utf8').digest('hex')}`
}
