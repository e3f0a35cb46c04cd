import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import type { AuditLog, AuditWrite } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import type { Store } from '../../src/store/db.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { openMigrated, sampleEvent } from './helpers.js'

// AuditLog.appendWith: an event's rows commit in the same transaction as its record (on a SQLite
// file in the writer thread), all or nothing, and a condition that changes no row writes nothing.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`audit appendWith (${dialect.name})`, () => {
    let database: TestDatabase
    let store: Store
    let audit: AuditLog
    const insert = (id: string): AuditWrite =>
      store.db
        .insertInto('scratch' as never)
        .values({ id, n: 0 } as never)
        .compile()
    const bump = (id: string): AuditWrite =>
      store.db
        .updateTable('scratch' as never)
        .set({ n: 1 } as never)
        .where('id' as never, '=', id as never)
        .where('n' as never, '=', 0 as never)
        .compile()
    const rows = async () =>
      (
        await sql<{ id: string; n: number }>`SELECT id, n FROM scratch ORDER BY id`.execute(
          store.db,
        )
      ).rows.map((r) => `${r.id}:${Number(r.n)}`)

    beforeEach(async () => {
      database = await dialect.create()
      store = await openMigrated(database.url)
      await sql`CREATE TABLE scratch (id TEXT PRIMARY KEY, n INTEGER NOT NULL)`.execute(store.db)
      audit = createAuditLog(store, { now: () => new Date() })
    })
    afterEach(async () => {
      await store.close()
      await database.dispose()
    })

    it('commits the rows with the record; a condition met by one of two racers lets only it write', async () => {
      await audit.appendWith(sampleEvent(0), { writes: [insert('a')] })
      expect(await rows()).toEqual(['a:0'])
      // Both in one group commit: the first changes the row, the second finds nothing to change.
      const [first, second] = await Promise.all([
        audit.appendWith(sampleEvent(1), { condition: bump('a'), writes: [insert('b')] }),
        audit.appendWith(sampleEvent(2), { condition: bump('a'), writes: [insert('c')] }),
      ])
      expect(first?.seq).toBe(2)
      expect(second).toBeNull()
      expect(await rows()).toEqual(['a:1', 'b:0'])
      // The chain goes on after the skipped event, without a gap.
      expect((await audit.append(sampleEvent(3))).seq).toBe(3)
      expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 3 })
    })

    it('writes nothing of an event that cannot be recorded, nor of one whose row fails', async () => {
      await audit.appendWith(sampleEvent(0), { writes: [insert('a')] })
      const results = await Promise.allSettled([
        audit.appendWith(
          { type: 'test.appended', actor: { type: 'system', id: 't' }, data: { n: 1n } },
          { writes: [insert('x')] },
        ),
        // The key is taken: the statement fails, so this event and its other row are not written.
        audit.appendWith(sampleEvent(1), { writes: [insert('y'), insert('a')] }),
        audit.appendWith(sampleEvent(2), { writes: [insert('z')] }),
      ])
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled'])
      expect(await rows()).toEqual(['a:0', 'z:0'])
      expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 2 })
    })
  })
}
