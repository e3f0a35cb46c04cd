import { createHmac, hkdfSync } from 'node:crypto'
import type { MasterKeyRing } from './key-ring.js'
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
 *
 * Given a ring, the digest follows its current key: after `deputy keys rotate-master` the same
 * email digests differently, so sign-in throttle counts start again and records from before the
 * rotation are matched with the old key (docs/security.md, "Rotating the master key").
 */
export function createKeyedDigest(
  masterKey: MasterKey | MasterKeyRing,
  purpose: string,
): (value: string) => string {
  const current = 'current' in masterKey ? () => masterKey.current() : () => masterKey
  let derived: { kid: string; key: Buffer } | undefined
  return (value) => {
    const master = current()
    if (derived?.kid !== master.kid) {
      derived = {
        kid: master.kid,
        key: Buffer.from(hkdfSync('sha256', master.key, '', `deputy digest: ${purpose}`, 32)),
      }
    }
    return `hmac-sha-256:${createHmac('sha256', derived.key).update(value, 'utf8').digest('hex')}`
  }
}
