import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { DeputyError } from '../lib/errors.js'
import type { MasterKeyRing } from './key-ring.js'
import type { MasterKey } from './master-key.js'
import type { Sealer } from './types.js'

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
const DATA_KEY_BYTES = 32

/**
 * Envelope encryption with AES-256-GCM. Each value gets its own random data key; the data key is
 * wrapped with the master key. Both layers use a fresh random 96-bit IV and the same associated
 * data, so a sealed value only opens for the record it was sealed for. The master key's id is
 * stored in the clear so a master-key rotation (keys/rotate-master.ts) knows which key opens
 * which record. Given several keys or a ring, the current (first) one seals and any one opens.
 *
 * Format: `v1.<masterKid>.<wrapIv>.<wrappedDataKey+tag>.<iv>.<ciphertext+tag>` (base64url parts).
 */
export function createSealer(masterKeys: MasterKey | MasterKey[] | MasterKeyRing): Sealer {
  const ring = toRing(masterKeys)

  return {
    seal(plaintext, associatedData) {
      const current = ring.current()
      const dataKey = randomBytes(DATA_KEY_BYTES)
      const aad = Buffer.from(associatedData, 'utf8')
      const wrapIv = randomBytes(IV_BYTES)
      const wrapped = encrypt(current.key, wrapIv, dataKey, aad)
      const iv = randomBytes(IV_BYTES)
      const ciphertext = encrypt(dataKey, iv, Buffer.from(plaintext, 'utf8'), aad)
      dataKey.fill(0)
      return [VERSION, current.kid, wrapIv, wrapped, iv, ciphertext]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.')
    },
    open(sealed, associatedData) {
      const parts = sealed.split('.')
      if (parts.length !== 6 || parts[0] !== VERSION) {
        throw new DeputyError('ERR_DECRYPT_FAILED', 'sealed value has an unknown format')
      }
      const kid = parts[1] as string
      const [wrapIv, wrapped, iv, ciphertext] = parts.slice(2).map(b64)
      if (
        !wrapIv ||
        !wrapped ||
        !iv ||
        !ciphertext ||
        wrapIv.length !== IV_BYTES ||
        iv.length !== IV_BYTES ||
        wrapped.length !== DATA_KEY_BYTES + TAG_BYTES ||
        ciphertext.length < TAG_BYTES
      ) {
        throw new DeputyError(
          'ERR_DECRYPT_FAILED',
          'sealed value does not open: it was altered or truncated',
        )
      }
      const master = ring.find(kid)
      if (!master) {
        throw new DeputyError(
          'ERR_DECRYPT_FAILED',
          `sealed value needs master key ${kid}, which is not configured`,
        )
      }
      const aad = Buffer.from(associatedData, 'utf8')
      let dataKey: Buffer | undefined
      try {
        dataKey = decrypt(master.key, wrapIv, wrapped, aad)
        return decrypt(dataKey, iv, ciphertext, aad).toString('utf8')
      } catch {
        throw new DeputyError(
          'ERR_DECRYPT_FAILED',
          'sealed value does not open: wrong master key, or it was altered or moved to another record',
        )
      } finally {
        dataKey?.fill(0)
      }
    },
  }
}

/** The master key id a sealed value names, or undefined when it is not one. */
export function sealedKid(sealed: string): string | undefined {
  const parts = sealed.split('.')
  return parts.length === 6 && parts[0] === VERSION ? parts[1] : undefined
}

function toRing(masterKeys: MasterKey | MasterKey[] | MasterKeyRing): MasterKeyRing {
  if ('current' in masterKeys) return masterKeys
  const keys = Array.isArray(masterKeys) ? masterKeys : [masterKeys]
  const current = keys[0]
  if (!current) throw new TypeError('createSealer needs at least one master key')
  const byKid = new Map(keys.map((k) => [k.kid, k]))
  return { current: () => current, find: (kid) => byKid.get(kid) }
}

/**
 * Node's decoder skips characters outside the alphabet and ignores spare trailing bits, so an
 * altered character could decode to the same bytes; only the canonical spelling is accepted.
 */
function b64(part: string): Buffer | undefined {
  const bytes = Buffer.from(part, 'base64url')
  return bytes.toString('base64url') === part ? bytes : undefined
}

function encrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad)
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
}

function decrypt(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  decipher.setAAD(aad)
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  return Buffer.concat([
    decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
    decipher.final(),
  ])
}
