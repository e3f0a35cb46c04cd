import { hash, verify } from '@node-rs/argon2'

// argon2id with OWASP's second recommended profile (19 MiB, t=2, p=1): slow for an attacker with
// the database, about 20 ms for a sign-in. Algorithm 2 is argon2id in @node-rs/argon2.
const PARAMS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

/** Shortest password we accept; length beats composition rules (NIST SP 800-63B §5.1.1). */
export const MIN_PASSWORD_LENGTH = 10

/** Hashes a password to a PHC string (`$argon2id$…`). */
export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS)
}

// A real hash to verify against when the account does not exist, so a wrong email costs the same
// time as a wrong password and sign-in timing does not reveal which accounts exist.
let dummyHash: Promise<string> | undefined

/** Checks a password against a stored hash; with no hash, spends the same time and fails. */
export async function verifyPassword(stored: string | null, password: string): Promise<boolean> {
  if (!stored) {
    dummyHash ??= hashPassword('deputy-timing-equaliser')
    await verify(await dummyHash, password).catch(() => false)
    return false
  }
  try {
    return await verify(stored, password)
  } catch {
    return false
  }
}
