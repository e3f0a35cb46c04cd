import { mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { createSealer, sealedKid } from '../../src/keys/envelope.js'
import { createMasterKeyRing } from '../../src/keys/key-ring.js'
import {
  generateMasterKey,
  loadMasterKey,
  parseMasterKey,
  replaceKeyFile,
} from '../../src/keys/master-key.js'

function keyFile(...keys: string[]): { cwd: string; file: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'deputy-key-ring-'))
  const file = join(cwd, 'master.key')
  replaceKeyFile(file, keys)
  return { cwd, file }
}

describe('several master keys: the first seals, every one opens', () => {
  it('a key file holds the current key first and previous keys after it', () => {
    const [current, previous] = [generateMasterKey(), generateMasterKey()]
    const { cwd, file } = keyFile(current, previous)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const loaded = loadMasterKey(loadConfig({ env: { DEPUTY_MASTER_KEY_FILE: file }, cwd }))
    expect(loaded.key.kid).toBe(parseMasterKey(current, 't').kid)
    expect(loaded.keys.map((k) => k.kid)).toEqual(
      [current, previous].map((k) => parseMasterKey(k, 't').kid),
    )
    const oldSealer = createSealer(parseMasterKey(previous, 't'))
    const sealer = createSealer(loaded.keys)
    const sealedBefore = oldSealer.seal('secret', 'aad')
    expect(sealer.open(sealedBefore, 'aad')).toBe('secret')
    expect(sealedKid(sealer.seal('secret', 'aad'))).toBe(loaded.key.kid)
  })

  it('DEPUTY_MASTER_KEY_PREVIOUS lists keys that open; a malformed one is refused without echoing it', () => {
    const [current, a, b] = [generateMasterKey(), generateMasterKey(), generateMasterKey()]
    const cwd = mkdtempSync(join(tmpdir(), 'deputy-key-ring-'))
    const loaded = loadMasterKey(
      loadConfig({
        env: { DEPUTY_MASTER_KEY: current, DEPUTY_MASTER_KEY_PREVIOUS: `${a}, ${b}` },
        cwd,
      }),
    )
    expect(loaded.keys).toHaveLength(3)
    expect(loaded.key.kid).toBe(parseMasterKey(current, 't').kid)
    const bad = 'not-a-key-but-maybe-a-secret'
    expect(() =>
      loadMasterKey(
        loadConfig({ env: { DEPUTY_MASTER_KEY: current, DEPUTY_MASTER_KEY_PREVIOUS: bad }, cwd }),
      ),
    ).toThrow(/DEPUTY_MASTER_KEY_PREVIOUS.*malformed/)
    try {
      loadMasterKey(
        loadConfig({ env: { DEPUTY_MASTER_KEY: current, DEPUTY_MASTER_KEY_PREVIOUS: bad }, cwd }),
      )
    } catch (err) {
      expect((err as Error).message).not.toContain(bad)
    }
  })

  it('a ring over a key file follows it: the new first key seals at once, and a value sealed by another process with a key it has not read yet opens', () => {
    const [old, next] = [generateMasterKey(), generateMasterKey()]
    const { cwd, file } = keyFile(old)
    const source = loadMasterKey(loadConfig({ env: { DEPUTY_MASTER_KEY_FILE: file }, cwd }))
    const ring = createMasterKeyRing({ source, file })
    const sealer = createSealer(ring)
    expect(sealedKid(sealer.seal('x', 'aad'))).toBe(parseMasterKey(old, 't').kid)

    // Another process (the rotation) writes the file and seals with the new key.
    replaceKeyFile(file, [next, old])
    const elsewhere = createSealer(parseMasterKey(next, 't'))
    expect(sealer.open(elsewhere.seal('y', 'aad'), 'aad')).toBe('y')
    expect(sealedKid(sealer.seal('z', 'aad'))).toBe(parseMasterKey(next, 't').kid)

    // Retired from the file, the old key is still known to this running process.
    const sealedOld = createSealer(parseMasterKey(old, 't')).seal('w', 'aad')
    replaceKeyFile(file, [next])
    expect(sealer.open(sealedOld, 'aad')).toBe('w')
  })

  it('fails closed: a ring that cannot find a key does not open, and a garbled file keeps the keys it had', () => {
    const [old, stranger] = [generateMasterKey(), generateMasterKey()]
    const { cwd, file } = keyFile(old)
    const source = loadMasterKey(loadConfig({ env: { DEPUTY_MASTER_KEY_FILE: file }, cwd }))
    const sealer = createSealer(createMasterKeyRing({ source, file }))
    const foreign = createSealer(parseMasterKey(stranger, 't')).seal('v', 'aad')
    expect(() => sealer.open(foreign, 'aad')).toThrow(/not configured/)
    writeFileSync(file, 'garbage\n')
    expect(sealedKid(sealer.seal('x', 'aad'))).toBe(parseMasterKey(old, 't').kid)
  })
})
