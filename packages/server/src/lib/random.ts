import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** A URL-safe random token with `bytes` bytes of entropy (default 32). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

/** SHA-256 of a string as base64url: how high-entropy secrets (session ids, API keys) are stored. */
export function sha256(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('base64url')
}

/** SHA-256 as lower-case hex. */
export function sha256Hex(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('hex')
}

/** Compares two strings in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
