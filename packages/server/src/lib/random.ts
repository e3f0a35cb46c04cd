import { hash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto'

/**
 * Bytes from the CSPRNG fetched 4 KiB at a time: each `randomBytes` call costs a few µs of fixed
 * overhead, and a token request draws several ids. Every byte is handed out once; the pool is
 * refilled (not reused) when spent, as `crypto.randomUUID` does with its own cache.
 */
const POOL_SIZE = 4096
const pool = Buffer.alloc(POOL_SIZE)
let poolOffset = POOL_SIZE

/** A URL-safe random token with `bytes` bytes of entropy (default 32). */
export function randomToken(bytes = 32): string {
  if (bytes > 256) return randomBytes(bytes).toString('base64url')
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const start = poolOffset
  poolOffset += bytes
  const token = pool.toString('base64url', start, poolOffset)
  pool.fill(0, start, poolOffset)
  return token
}

/**
 * A random identifier with `bytes` bytes of entropy that people type or paste into commands
 * (`deputy approvals approve <id>`): like `randomToken`, but never beginning with `-`, which a
 * command-line parser would take for an option. One base64url character in 64 is `-`; such a
 * draw is discarded and drawn again, so the ids stay uniform over those that do not begin with it.
 */
export function randomId(bytes = 16): string {
  for (;;) {
    const id = randomToken(bytes)
    if (id[0] !== '-') return id
  }
}

// `hash` is node:crypto's one-shot digest: the same bytes as createHash().update().digest(), at
// about half the cost (no Hash object), and the token endpoint hashes a secret on every request.

/** SHA-256 of a string as base64url: how high-entropy secrets (session ids, API keys) are stored. */
export function sha256(value: string | Uint8Array): string {
  return hash('sha256', value, 'base64url')
}

/** SHA-256 as lower-case hex. */
export function sha256Hex(value: string | Uint8Array): string {
  return hash('sha256', value, 'hex')
}

/** Compares two strings in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
