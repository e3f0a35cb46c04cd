import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { loadMasterKey } from '../../src/keys/master-key.js'
import { lines, runDeputy } from './cli-helpers.js'

function emptyDir(): string {
  return mkdtempSync(join(tmpdir(), 'deputy-master-key-'))
}

function thrown(work: () => unknown): { code?: string; message: string } {
  try {
    work()
  } catch (err) {
    return err as { code?: string; message: string }
  }
  throw new Error('expected an error')
}

describe('master key', () => {
  it('is generated on the first development start with mode 0600 and reused on the next', () => {
    const cwd = emptyDir()
    const config = loadConfig({ env: {}, cwd })
    const first = loadMasterKey(config)
    expect(first.origin).toBe('generated')
    expect(config.masterKeyFile).toBe(join(cwd, '.deputy', 'master.key'))
    expect(statSync(config.masterKeyFile).mode & 0o777).toBe(0o600)
    expect(readFileSync(config.masterKeyFile, 'utf8').trim()).toBe(
      first.key.key.toString('base64url'),
    )

    const second = loadMasterKey(loadConfig({ env: {}, cwd }))
    expect(second.origin).toBe('file')
    expect(second.key.kid).toBe(first.key.kid)
    expect(second.key.key.equals(first.key.key)).toBe(true)
    // No temporary files left beside the key.
    expect(readdirSync(join(cwd, '.deputy'))).toEqual(['master.key'])
  })

  it('takes DEPUTY_MASTER_KEY before any file, and accepts openssl-style base64', () => {
    const cwd = emptyDir()
    const raw = Buffer.alloc(32, 0xfb) // encodes with '+' and '/' in standard base64
    const fromEnv = loadMasterKey(
      loadConfig({ env: { DEPUTY_MASTER_KEY: raw.toString('base64') }, cwd }),
    )
    expect(fromEnv.origin).toBe('environment')
    expect(fromEnv.key.key.equals(raw)).toBe(true)
    const fromUrl = loadMasterKey(
      loadConfig({ env: { DEPUTY_MASTER_KEY: raw.toString('base64url') }, cwd }),
    )
    expect(fromUrl.key.kid).toBe(fromEnv.key.kid)
    expect(readdirSync(cwd)).toEqual([])
  })

  it('in production refuses to start without a key and creates no key file', () => {
    const cwd = emptyDir()
    const err = thrown(() => loadMasterKey(loadConfig({ env: { DEPUTY_MODE: 'production' }, cwd })))
    expect(err.code).toBe('ERR_MASTER_KEY_MISSING')
    expect(err.message).toMatch(/DEPUTY_MASTER_KEY/)
    expect(err.message).toMatch(/deputy keys generate-master/)
    expect(readdirSync(cwd)).toEqual([])
  })

  it('names the source of a malformed key in one line without repeating the key', () => {
    const cwd = emptyDir()
    const bad = 'c2hvcnQta2V5LW5vdC0zMi1ieXRlcw'
    const fromEnv = thrown(() =>
      loadMasterKey(loadConfig({ env: { DEPUTY_MASTER_KEY: bad }, cwd })),
    )
    expect(fromEnv.code).toBe('ERR_MASTER_KEY_INVALID')
    expect(fromEnv.message).toMatch(/DEPUTY_MASTER_KEY/)
    expect(fromEnv.message).not.toContain(bad)
    expect(fromEnv.message).not.toContain('\n')

    const file = join(cwd, 'master.key')
    writeFileSync(file, 'not a key at all\n')
    const fromFile = thrown(() =>
      loadMasterKey(loadConfig({ env: { DEPUTY_MASTER_KEY_FILE: file }, cwd })),
    )
    expect(fromFile.code).toBe('ERR_MASTER_KEY_INVALID')
    expect(fromFile.message).toContain(file)
    expect(fromFile.message).not.toContain('not a key at all')
  })

  it('`deputy start --production` without a key exits non-zero with one line and no key file', () => {
    const cwd = emptyDir()
    const result = runDeputy(['start', '--production', '--port', '0'], { cwd })
    expect(result.status).not.toBe(0)
    expect(lines(result.stderr)).toEqual([
      'deputy: no master key: in production set DEPUTY_MASTER_KEY or DEPUTY_MASTER_KEY_FILE (generate one with `deputy keys generate-master`)',
    ])
    expect(result.stdout).toBe('')
    expect(readdirSync(cwd)).toEqual([])
  })

  it('a CLI command with a malformed DEPUTY_MASTER_KEY says so in one line', () => {
    const cwd = emptyDir()
    const result = runDeputy(['keys', 'list'], { cwd, env: { DEPUTY_MASTER_KEY: 'too-short' } })
    expect(result.status).toBe(1)
    const stderr = lines(result.stderr)
    expect(stderr).toHaveLength(1)
    expect(stderr[0]).toMatch(/^deputy: master key from DEPUTY_MASTER_KEY .* is malformed/)
    expect(stderr[0]).not.toContain('too-short')
  })
})
