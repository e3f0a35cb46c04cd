import { spawn } from 'node:child_process'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { APPENDER, openMigrated, sampleEvent } from './helpers.js'

function runAppender(database: string, count: number, writer: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [APPENDER, database, String(count), writer, 'parallel'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    child.on('error', reject)
    child.on('exit', resolve)
  })
}

// Issue 2 §6: appending keeps the chain linear under concurrent writers, in one process and in
// several processes sharing one database.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `audit appends under concurrency (${dialect.name})`,
    () => {
      let database: TestDatabase
      beforeEach(async () => {
        database = await dialect.create()
      })
      afterEach(() => database.dispose())

      it('keeps 200 concurrent appends in one process on one linear chain', async () => {
        const store = await openMigrated(database.url)
        try {
          const audit = createAuditLog(store, { now: () => new Date() })
          const records = await Promise.all(
            Array.from({ length: 200 }, (_, i) => audit.append(sampleEvent(i))),
          )
          // Every caller got its own place in the chain.
          expect(records.map((r) => r.seq).sort((a, b) => a - b)).toEqual(
            Array.from({ length: 200 }, (_, i) => i + 1),
          )
          expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 200 })
        } finally {
          await store.close()
        }
      })

      it('keeps 4 processes × 50 concurrent appends on one linear chain, losing none', async () => {
        // Migrate once up front: the children only append.
        await (await openMigrated(database.url)).close()
        const writers = ['w1', 'w2', 'w3', 'w4']
        const codes = await Promise.all(writers.map((w) => runAppender(database.url, 50, w)))
        expect(codes).toEqual([0, 0, 0, 0])

        const store = await openMigrated(database.url)
        try {
          expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 200 })
          const rows = await store.db.selectFrom('audit_events').select(['data']).execute()
          const written = rows.map((r) => {
            const data = JSON.parse(r.data) as { writer: string; i: number }
            return `${data.writer}/${data.i}`
          })
          expect(new Set(written).size).toBe(200)
          for (const w of writers)
            expect(written.filter((x) => x.startsWith(`${w}/`))).toHaveLength(50)
        } finally {
          await store.close()
        }
      })
    },
  )
}
