import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openDeputy } from '../../src/deputy.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { createSqliteDatabase, type TestDatabase } from '../helpers/databases.js'
import { testConfig } from '../helpers/deputy.js'
import { lines, runDeputy } from './cli-helpers.js'

const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}$/

describe('deputy keys', () => {
  const databases: TestDatabase[] = []
  afterAll(async () => {
    for (const d of databases) await d.dispose()
  })

  async function setup() {
    const database = await createSqliteDatabase()
    databases.push(database)
    const masterKey = generateMasterKey()
    const run = (...args: string[]) =>
      runDeputy(['--db', database.url, ...args], { env: { DEPUTY_MASTER_KEY: masterKey } })
    expect(run('migrate').status).toBe(0)
    return { database, masterKey, run }
  }

  it('rotate prints the new kid and until when the old key stays published; list shows both', async () => {
    const { run } = await setup()
    const first = run('keys', 'rotate')
    expect(first.status).toBe(0)
    const [created, none] = lines(first.stdout)
    const firstKid = created?.match(/^new signing key (\S+) \(ES256\) is active$/)?.[1]
    expect(firstKid).toBeDefined()
    expect(none).toBe('there was no previous key')

    const second = run('keys', 'rotate')
    expect(second.status).toBe(0)
    const out = lines(second.stdout)
    const secondKid = out[0]?.match(/^new signing key (\S+) \(ES256\) is active$/)?.[1]
    expect(secondKid).toBeDefined()
    expect(secondKid).not.toBe(firstKid)
    const until = out[1]?.match(/^previous key (\S+) stays published until (\S+)$/)
    expect(until?.[1]).toBe(firstKid)
    expect(Date.parse(until?.[2] ?? '')).toBeGreaterThan(Date.now())

    const list = run('keys', 'list')
    expect(list.status).toBe(0)
    const table = lines(list.stdout)
    expect(table[0]?.split(/\s+/)).toEqual([
      'KID',
      'ALG',
      'STATUS',
      'CREATED',
      'RETIRED',
      'PUBLISH-UNTIL',
      'PUBLISHED',
    ])
    expect(table).toHaveLength(3)
    const active = table[1]?.split(/\s+/)
    expect(active).toEqual([secondKid, 'ES256', 'active', expect.any(String), '-', '-', 'yes'])
    expect(table[2]?.split(/\s+/)).toEqual([
      firstKid,
      'ES256',
      'retired',
      expect.any(String),
      expect.any(String),
      until?.[2],
      'yes',
    ])
  })

  it('--json gives the rotation and the key list as JSON, and the audit log names the CLI', async () => {
    const { database, masterKey, run } = await setup()
    run('keys', 'rotate')
    const rotated = run('--json', 'keys', 'rotate')
    expect(rotated.status).toBe(0)
    const rotation = JSON.parse(rotated.stdout)
    expect(rotation).toMatchObject({
      active: { alg: 'ES256', status: 'active', published: true, publishUntil: null },
      retired: { alg: 'ES256', status: 'retired', published: true },
    })
    expect(Date.parse(rotation.retired.publishUntil)).toBeGreaterThan(Date.now())

    const listed = run('keys', 'list', '--json')
    expect(listed.status).toBe(0)
    const { keys } = JSON.parse(listed.stdout)
    expect(keys).toEqual([rotation.active, rotation.retired])

    const opened = await openDeputy(testConfig(database.url, { masterKey }))
    try {
      const events = await opened.deps.db
        .selectFrom('audit_events')
        .select(['type', 'actor', 'data'])
        .where('type', 'like', 'signing-key.%')
        .orderBy('seq')
        .execute()
      expect(events.map((e) => [e.type, JSON.parse(e.actor), JSON.parse(e.data)])).toEqual([
        [
          'signing-key.rotated',
          { type: 'system', id: 'cli' },
          { kid: rotation.retired.kid, alg: 'ES256', retiredKid: null },
        ],
        [
          'signing-key.rotated',
          { type: 'system', id: 'cli' },
          { kid: rotation.active.kid, alg: 'ES256', retiredKid: rotation.retired.kid },
        ],
      ])
    } finally {
      await opened.close()
    }
  })

  it('list on a database with no keys yet says so', async () => {
    const { run } = await setup()
    const result = run('keys', 'list')
    expect(result.status).toBe(0)
    expect(result.stdout).toBe('(none)\n')
  })

  it('generate-master prints a fresh 32-byte key that Deputy accepts', async () => {
    const a = runDeputy(['keys', 'generate-master'])
    const b = runDeputy(['keys', 'generate-master'])
    expect(a.status).toBe(0)
    expect(lines(a.stdout)).toHaveLength(1)
    const key = a.stdout.trim()
    expect(key).toMatch(BASE64URL_KEY)
    expect(b.stdout.trim()).not.toBe(key)

    const json = JSON.parse(runDeputy(['--json', 'keys', 'generate-master']).stdout)
    expect(json.masterKey).toMatch(BASE64URL_KEY)

    // It works where the production-mode error points: DEPUTY_MASTER_KEY.
    const database = await createSqliteDatabase()
    databases.push(database)
    expect(runDeputy(['--db', database.url, 'migrate']).status).toBe(0)
    const rotated = runDeputy(['--db', database.url, 'keys', 'rotate'], {
      env: { DEPUTY_MASTER_KEY: key, DEPUTY_MODE: 'production' },
    })
    expect(rotated.stderr).toBe('')
    expect(rotated.status).toBe(0)
  })

  it('generate-master --file writes a 0600 file and never overwrites one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'deputy-keys-cli-'))
    const file = join(dir, 'secrets', 'master.key')
    const first = runDeputy(['keys', 'generate-master', '--file', file])
    expect(first.status).toBe(0)
    expect(first.stdout).toBe(`wrote a new master key to ${file} (mode 0600)\n`)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const key = readFileSync(file, 'utf8').trim()
    expect(key).toMatch(BASE64URL_KEY)

    const again = runDeputy(['keys', 'generate-master', '--file', file])
    expect(again.status).toBe(1)
    expect(lines(again.stderr)).toEqual([
      `deputy: ${file} already exists; a master key file is never overwritten`,
    ])
    expect(readFileSync(file, 'utf8').trim()).toBe(key)
  })
})
