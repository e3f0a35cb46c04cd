import type { JWK } from 'jose'
import type { Actor } from '../audit/types.js'

/**
 * Envelope encryption of values Deputy must read back (private keys, later vault tokens).
 * `associatedData` binds the sealed value to its owner (e.g. `signing_keys:<kid>`), so a sealed
 * value copied onto another record fails to open.
 */
export interface Sealer {
  seal(plaintext: string, associatedData: string): string
  open(sealed: string, associatedData: string): string
}

/** A key that can sign now. */
export interface ActiveSigningKey {
  kid: string
  alg: 'ES256' | 'EdDSA'
  privateKey: CryptoKey
}

export interface SigningKeySummary {
  kid: string
  alg: string
  status: 'active' | 'retired'
  createdAt: string
  retiredAt: string | null
  /** When a retired key leaves the JWKS. */
  publishUntil: string | null
  published: boolean
}

/** Signing keys: the active one signs, every published one verifies. */
export interface SigningKeys {
  /** The key that signs new tokens; created on first use if there is none. */
  active(): Promise<ActiveSigningKey>
  /** Public keys to publish (active and retired-but-still-published). */
  jwks(): Promise<{ keys: JWK[] }>
  /**
   * Makes a new key sign; the previous one stays published until its last token has expired.
   * `actor` (default: Deputy itself) is who the audit event names.
   */
  rotate(actor?: Actor): Promise<SigningKeyRotation>
  /** Every key, active first, then newest first. */
  list(): Promise<SigningKeySummary[]>
}

/** What a rotation did: the key that signs from now on and the one it replaced, if any. */
export interface SigningKeyRotation {
  active: SigningKeySummary
  /** The previous active key, now retired and published until `publishUntil`. */
  retired: SigningKeySummary | null
}
