import { describe, expect, it } from 'vitest'
import { createSealer } from '../../src/keys/envelope.js'
import { generateMasterKey, loadMasterKey, type MasterKey } from '../../src/keys/master-key.js'
import { testConfig } from '../helpers/deputy.js'

function masterKey(): MasterKey {
  return loadMasterKey(testConfig(':memory:', { masterKey: generateMasterKey() })).key
}

/** Flips one bit in the bytes of one base64url part, keeping the encoding canonical. */
function alterPart(sealed: string, index: number): string {
  const parts = sealed.split('.')
  const bytes = Buffer.from(parts[index] as string, 'base64url')
  bytes[0] = (bytes[0] as number) ^ 0x01
  parts[index] = bytes.toString('base64url')
  return parts.join('.')
}

function failure(open: () => unknown): { code?: string; message: string } {
  try {
    open()
  } catch (err) {
    return err as { code?: string; message: string }
  }
  throw new Error('expected the sealed value not to open')
}

describe('envelope encryption (AES-256-GCM, data key wrapped by the master key)', () => {
  const key = masterKey()
  const sealer = createSealer(key)

  it('opens what it sealed, for the same owner', () => {
    for (const text of ['{"d":"private"}', '', 'üñïçødé ✓'.repeat(100)]) {
      expect(sealer.open(sealer.seal(text, 'signing_keys:abc'), 'signing_keys:abc')).toBe(text)
    }
  })

  it('seals the same value differently each time (fresh data key and IVs) and never in clear', () => {
    const a = sealer.seal('the same secret', 'owner:1')
    const b = sealer.seal('the same secret', 'owner:1')
    expect(a).not.toBe(b)
    const [, , wrapIvA, wrappedA, ivA] = a.split('.')
    const [, , wrapIvB, wrappedB, ivB] = b.split('.')
    expect(wrapIvA).not.toBe(wrapIvB)
    expect(wrappedA).not.toBe(wrappedB)
    expect(ivA).not.toBe(ivB)
    expect(a).not.toContain('the same secret')
    expect(a).not.toContain(Buffer.from('the same secret').toString('base64url'))
  })

  it('records which master key sealed it, so a record still opens after a new master key is added', () => {
    const sealed = sealer.seal('old record', 'owner:1')
    expect(sealed.split('.')[1]).toBe(key.kid)
    const newer = masterKey()
    const both = createSealer([newer, key])
    expect(both.open(sealed, 'owner:1')).toBe('old record')
    expect(both.seal('new record', 'owner:2').split('.')[1]).toBe(newer.kid)
  })

  it('refuses a value moved to another record (associated data mismatch)', () => {
    const sealed = sealer.seal('secret', 'signing_keys:one')
    const err = failure(() => sealer.open(sealed, 'signing_keys:two'))
    expect(err.code).toBe('ERR_DECRYPT_FAILED')
    expect(err.message).toBe(
      'sealed value does not open: wrong master key, or it was altered or moved to another record',
    )
  })

  it('refuses any altered part: wrapping IV, wrapped data key, IV, ciphertext', () => {
    const sealed = sealer.seal('secret', 'owner:1')
    for (const index of [2, 3, 4, 5]) {
      const err = failure(() => sealer.open(alterPart(sealed, index), 'owner:1'))
      expect(err.code, `part ${index}`).toBe('ERR_DECRYPT_FAILED')
      expect(err.message).toMatch(/^sealed value does not open/)
    }
  })

  it('refuses a character change that decodes to the same bytes (non-canonical base64url)', () => {
    // 'secret' is 6 bytes + 16 tag bytes = 22 bytes: the last character carries 4 spare bits.
    const sealed = sealer.seal('secret', 'owner:1')
    const last = sealed.at(-1) as string
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const twin = alphabet[alphabet.indexOf(last) ^ 0x01] as string
    const altered = sealed.slice(0, -1) + twin
    expect(Buffer.from(altered.split('.')[5] as string, 'base64url')).toEqual(
      Buffer.from(sealed.split('.')[5] as string, 'base64url'),
    )
    expect(failure(() => sealer.open(altered, 'owner:1')).code).toBe('ERR_DECRYPT_FAILED')
  })

  it('refuses a changed master key id, version or a truncated value, saying why', () => {
    const sealed = sealer.seal('secret', 'owner:1')
    const parts = sealed.split('.')
    const otherKid = [parts[0], 'AAAAAAAAAAAA', ...parts.slice(2)].join('.')
    expect(failure(() => sealer.open(otherKid, 'owner:1'))).toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
      message: 'sealed value needs master key AAAAAAAAAAAA, which is not configured',
    })
    expect(failure(() => sealer.open(`v2${sealed.slice(2)}`, 'owner:1'))).toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
      message: 'sealed value has an unknown format',
    })
    expect(failure(() => sealer.open(parts.slice(0, 5).join('.'), 'owner:1')).code).toBe(
      'ERR_DECRYPT_FAILED',
    )
  })

  it('refuses to open with a wrong master key of the same id (a replaced key file)', () => {
    const sealed = sealer.seal('secret', 'owner:1')
    const impostor = createSealer({ kid: key.kid, key: masterKey().key })
    const err = failure(() => impostor.open(sealed, 'owner:1'))
    expect(err.code).toBe('ERR_DECRYPT_FAILED')
    expect(err.message).toMatch(/wrong master key/)
  })
})
