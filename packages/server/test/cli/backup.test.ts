import { statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSqliteDatabase, type TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { buildServer } from '../helpers/replicas.js'
import { deputyCli, deputyCliAsync, oneLineError } from './run.js'

// Issue 14 §4: `deputy backup <file>` copies a SQLite database while Deputy serves (SQLite's
// online backup), checks the copy, and a Deputy started from the copy has a chain that verifies.

describe('deputy backup', () => {
  let source: TestDeputy
  let dir: TestDatabase

  beforeAll(async () => {
    buildServer()
    source = await startTestDeputy()
    dir = await createSqliteDatabase()
  })
  afterAll(async () => {
    await source?.dispose()
    await dir?.dispose()
  })

  it('copies the database while Deputy appends to its audit chain; Deputy starts from the copy and `deputy audit verify` passes on it', async () => {
    const copy = join(dir.url, '..', 'backup.db')
    let writing = true
    let written = 0
    const writer = (async () => {
      while (writing) {
        await source.deps.audit.append({
          type: 'user.created',
          actor: { type: 'system', id: 'test' },
          data: { n: written },
        })
        written++
      }
    })()
    // Let writes be under way before the copy starts, and keep them going while it runs.
    while (written < 20) await new Promise((r) => setTimeout(r, 5))
    const result = await deputyCliAsync(['backup', copy, '--db', source.database.url])
    writing = false
    await writer
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const match = /audit chain intact \((\d+) records\)/.exec(result.stdout)
    expect(match).not.toBeNull()
    expect(Number(match?.[1])).toBeGreaterThanOrEqual(20)
    expect(result.stdout).toContain('Keep the master key too')
    expect(statSync(copy).mode & 0o777).toBe(0o600)

    // Restore: a Deputy started on the copy (with the same master key) serves and appends.
    const restored = await startTestDeputy({
      database: { url: copy, dispose: async () => {} },
      config: { masterKey: source.config.masterKey },
    })
    expect((await restored.app.request('/readyz')).status).toBe(200)
    await restored.deps.audit.append({
      type: 'user.created',
      actor: { type: 'system', id: 'test' },
      data: { restored: true },
    })
    await restored.close()
    const verify = deputyCli(['audit', 'verify', '--db', copy])
    expect(verify.stderr).toBe('')
    expect(verify.status).toBe(0)
    expect(verify.stdout).toMatch(/^audit chain intact: \d+ records/)

    // A backup never overwrites a file.
    oneLineError(
      deputyCli(['backup', copy, '--db', source.database.url]),
      /exists: give a new file for the backup/,
    )
  })

  it('on PostgreSQL it copies nothing and points to pg_dump and docs/deploy.md, in one line', () => {
    oneLineError(
      deputyCli([
        'backup',
        join(dir.url, '..', 'pg.dump'),
        '--db',
        'postgres://127.0.0.1:1/deputy',
      ]),
      /back up PostgreSQL with pg_dump .*docs\/deploy\.md/,
    )
  })
})
