import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { openStore } from '../../src/store/db.js'
import type { TestDatabase } from '../helpers/databases.js'
import { startTestDeputy } from '../helpers/deputy.js'
import { buildServer } from '../helpers/replicas.js'
import { deputyCli, lines } from './run.js'

// Issue 14 §4: `deputy doctor` checks a deployment and says what is wrong, one line per check
// (ok / warn / fail), exit code 1 when anything fails.

/** The status of each check by name, from the doctor's lines. */
function statuses(stdout: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of lines(stdout)) {
    const m = /^(ok|warn|fail)\s+([^:]+):/.exec(line)
    if (!m) throw new Error(`not a doctor line: ${line}`)
    out[m[2] as string] = m[1] as string
  }
  return out
}

describe('deputy doctor', () => {
  let db: TestDatabase
  let masterKey: string

  beforeAll(async () => {
    buildServer()
    const deputy = await startTestDeputy()
    db = deputy.database
    masterKey = deputy.config.masterKey as string
    await deputy.close()
  })
  afterAll(() => db?.dispose())

  const doctor = (env: Record<string, string>, args: string[] = []) =>
    deputyCli(['doctor', '--db', db.url, ...args], { env })

  it('a healthy deployment: every check ok, exit 0', () => {
    const result = doctor({ DEPUTY_MASTER_KEY: masterKey })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(statuses(result.stdout)).toEqual({
      config: 'ok',
      issuer: 'ok',
      metrics: 'ok',
      'rate limits': 'ok',
      'trusted proxies': 'ok',
      disk: expect.stringMatching(/^(ok|warn)$/),
      'master key': 'ok',
      database: 'ok',
      migrations: 'ok',
      'signing keys': 'ok',
      'audit chain': 'ok',
    })
    expect(result.stdout).toMatch(/ok {4}audit chain: intact, \d+ records/)
  })

  it('production on plain http, an open metrics port, limits off and a proxy range of the whole internet: each named, exit 1', () => {
    const result = doctor(
      {
        DEPUTY_MASTER_KEY: masterKey,
        DEPUTY_MODE: 'production',
        DEPUTY_ISSUER: 'http://deputy.example.com',
        DEPUTY_METRICS_PORT: '9464',
        DEPUTY_METRICS_HOST: '0.0.0.0',
        DEPUTY_TOKEN_RATE_LIMIT_PER_CLIENT: '0',
        DEPUTY_TRUSTED_PROXIES: '0.0.0.0/0',
      },
      ['--quick'],
    )
    expect(result.status).toBe(1)
    expect(statuses(result.stdout)).toMatchObject({
      issuer: 'fail',
      metrics: 'warn',
      'rate limits': 'warn',
      'trusted proxies': 'fail',
      'audit chain': 'ok',
    })
    expect(result.stdout).toContain('off: tokenRateLimitPerClient')
    expect(result.stdout).toContain('not walked (--quick)')
    expect(result.stdout).not.toMatch(/\n\s+at /)
  })

  it('a master key file others can read, that is not the key of this database, and an edited audit record', async () => {
    const keyFile = join(db.url, '..', 'other.key')
    writeFileSync(keyFile, `${generateMasterKey()}\n`)
    chmodSync(keyFile, 0o644)
    const store = openStore(db.url)
    await store.db
      .updateTable('audit_events')
      .set({ type: 'edited.event' })
      .where('seq', '=', 1)
      .execute()
    await store.close()
    const result = doctor({ DEPUTY_MASTER_KEY_FILE: keyFile })
    expect(result.status).toBe(1)
    expect(statuses(result.stdout)).toMatchObject({
      'master key': 'fail',
      'signing keys': 'fail',
      'audit chain': 'fail',
    })
    expect(result.stdout).toContain('readable by others (mode 0644): chmod 600')
    expect(result.stdout).toContain('cannot be opened with this master key')
    expect(result.stdout).toContain('record 1: content does not match its hash')
  })

  it('a migration not applied, and a settings file with a mistake', async () => {
    const store = openStore(db.url)
    await store.db
      .deleteFrom('kysely_migration' as never)
      .where('name' as never, '=', '0023-rate-limit-buckets' as never)
      .execute()
    await store.close()
    const pending = doctor({ DEPUTY_MASTER_KEY: masterKey })
    expect(pending.status).toBe(1)
    expect(pending.stdout).toMatch(
      /fail {2}migrations: 1 not applied \(0023-rate-limit-buckets\): run `deputy migrate`/,
    )

    const file = join(db.url, '..', 'deputy.json')
    writeFileSync(file, JSON.stringify({ issuer: 'https://deputy.example.com', rateLimits: 5 }))
    const broken = deputyCli(['doctor', '--config', file, '--db', db.url])
    expect(broken.status).toBe(1)
    expect(lines(broken.stdout)).toHaveLength(1)
    expect(broken.stdout).toMatch(/^fail {2}config: .*rateLimits/)
  })
})
