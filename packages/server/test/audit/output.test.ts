import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/types.js'
import { createSqliteDatabase, type TestDatabase } from '../helpers/databases.js'
import { runCli, seedChain } from './helpers.js'

/**
 * Canonical JSON written from the rule in docs/events.md, independently of src/lib, so the
 * export is checked the way an outside auditor would check it.
 */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

function checkExport(text: string, count: number): AuditRecord[] {
  expect(text.endsWith('\n')).toBe(true)
  const records = text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as AuditRecord)
  expect(records.map((r) => r.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1))
  let prev = '0'.repeat(64)
  for (const { hash, ...content } of records) {
    expect(content.prevHash).toBe(prev)
    expect(createHash('sha256').update(canonical(content)).digest('hex')).toBe(hash)
    prev = hash
  }
  return records
}

describe('deputy audit tail and export', () => {
  let database: TestDatabase
  let seeded: AuditRecord[]
  beforeAll(async () => {
    database = await createSqliteDatabase()
    seeded = await seedChain(database.url, 30)
  })
  afterAll(() => database.dispose())

  it('verify, tail and export need no master key: an auditor is not handed the secrets', async () => {
    const env = { DEPUTY_MODE: 'production', DEPUTY_MASTER_KEY: '' }
    const verify = await runCli(database.url, ['audit', 'verify'], env)
    expect(verify).toMatchObject({ code: 0, stderr: '' })
    expect(verify.stdout).toContain('audit chain intact: 30 records')
    expect((await runCli(database.url, ['audit', 'tail', '-n', '1'], env)).code).toBe(0)
    expect((await runCli(database.url, ['audit', 'export', '--jsonl'], env)).code).toBe(0)
  })

  it('tail shows the newest 20 records, oldest first, as a table', async () => {
    const result = await runCli(database.url, ['audit', 'tail'])
    expect(result.code).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(
      /^SEQ\s+TIME\s+TYPE\s+ACTOR\s+ON_BEHALF_OF\s+TARGET\s+DECISION\s+REASON$/,
    )
    expect(lines.slice(1).map((l) => Number(l.split(/\s+/)[0]))).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 11),
    )
    // Record 30 (i = 29): a user refused, acting for alice through an agent.
    expect(lines[20]).toMatch(
      /^30\s+\S+Z\s+session\.started\s+user:u4\s+user:alice@example\.com\s+user:u29\s+deny\s+wrong password$/,
    )
  })

  it('tail -n and --type pick the newest records of one type', async () => {
    const result = await runCli(database.url, [
      'audit',
      'tail',
      '-n',
      '3',
      '--type',
      'login.failed',
    ])
    expect(result.code).toBe(0)
    const seqs = result.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(/\s+/)[0]))
    // login.failed is every fourth event from i = 2: seqs 3, 7, … 27.
    expect(seqs).toEqual([19, 23, 27])
  })

  it('tail --json prints the records with their hashes', async () => {
    const result = await runCli(database.url, ['audit', 'tail', '-n', '2', '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual(seeded.slice(28))
  })

  it('tail of a type nobody wrote says so', async () => {
    const result = await runCli(database.url, ['audit', 'tail', '--type', 'nothing.happened'])
    expect(result).toMatchObject({ code: 0, stdout: '(none)\n' })
  })

  it('tail refuses a count that is not a positive whole number, in one line', async () => {
    for (const n of ['0', 'ten', '-3', '2.5']) {
      const result = await runCli(database.url, ['audit', 'tail', '-n', n])
      expect(result.code).toBe(1)
      expect(result.stderr).toBe(`deputy: -n must be a whole number from 1 to 10000, not "${n}"\n`)
    }
  })

  it('export --jsonl streams every record in chain order, verifiable with the documented rule', async () => {
    const result = await runCli(database.url, ['audit', 'export', '--jsonl'])
    expect(result.code).toBe(0)
    expect(checkExport(result.stdout, 30)).toEqual(seeded)
  })

  it('export --out writes the same lines to a file and says how many', async () => {
    const out = join(database.url, '..', 'audit.jsonl')
    const result = await runCli(database.url, ['audit', 'export', '--jsonl', '--out', out])
    expect(result).toMatchObject({ code: 0, stdout: `exported 30 audit records to ${out}\n` })
    checkExport(readFileSync(out, 'utf8'), 30)
  })

  it('export --out to a folder that does not exist fails in one line', async () => {
    const out = join(database.url, '..', 'missing', 'audit.jsonl')
    const result = await runCli(database.url, ['audit', 'export', '--out', out])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^deputy: cannot write .*missing\/audit\.jsonl: ENOENT[^\n]*\n$/)
  })

  it('verify --json reports the count and the head to note down', async () => {
    const result = await runCli(database.url, ['audit', 'verify', '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({
      ok: true,
      records: 30,
      head: { seq: 30, hash: seeded[29]?.hash },
      // No checkpoint was made of this chain.
      checkpoint: {},
    })
  })
})
