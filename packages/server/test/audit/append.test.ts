import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import type { AuditLog } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import type { Store } from '../../src/store/db.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { openMigrated, sampleEvent } from './helpers.js'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`audit append and verify (${dialect.name})`, () => {
    let database: TestDatabase
    let store: Store
    let audit: AuditLog
    beforeEach(async () => {
      database = await dialect.create()
      store = await openMigrated(database.url)
      audit = createAuditLog(store, { now: () => new Date() })
    })
    afterEach(async () => {
      await store.close()
      await database.dispose()
    })

    it('verifies an empty chain as intact with no records', async () => {
      expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 0 })
    })

    it('carries the chain across pages and finds a break on a later page', async () => {
      for (let i = 0; i < 23; i++) await audit.append(sampleEvent(i))
      expect(await verifyAuditChain(store, { pageSize: 5 })).toMatchObject({
        ok: true,
        records: 23,
      })
      await sql`DELETE FROM audit_events WHERE seq = 16`.execute(store.db)
      expect(await verifyAuditChain(store, { pageSize: 5 })).toMatchObject({
        ok: false,
        records: 15,
        firstBad: { seq: 16, problem: 'record 16 is missing (deleted?)' },
      })
    })

    it('stores data with dates, undefined members and NaN so that it still verifies', async () => {
      const record = await audit.append({
        type: 'test.appended',
        actor: { type: 'system', id: 'test', label: undefined },
        data: { at: new Date('2026-01-02T03:04:05.000Z'), gone: undefined, ratio: Number.NaN },
      })
      expect(record.data).toEqual({ at: '2026-01-02T03:04:05.000Z', ratio: null })
      expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 1 })
    })

    it('stores the JSON columns as JSON.stringify writes them, keys in the order given: queries match their text', async () => {
      // Approvals, notifications and the admin CLI find records by the exact text of `target`
      // (`JSON.stringify({ type, id })`), so the columns are an interface: canonical (sorted)
      // text would hide every record from them.
      const target = { type: 'tool_call', id: 'call-1' }
      const actor = { type: 'user' as const, id: 'u1', label: 'Zed' }
      const data = { zeta: 1, alpha: { y: 2, b: [3, { d: 4, c: 5 }] } }
      await audit.append({ type: 'test.appended', actor, target, data })
      const rows = await store.db
        .selectFrom('audit_events')
        .select(['actor', 'target', 'data', 'delegation_chain', 'on_behalf_of'])
        .where('target', '=', JSON.stringify(target))
        .execute()
      expect(rows).toEqual([
        {
          actor: JSON.stringify(actor),
          target: JSON.stringify(target),
          data: JSON.stringify(data),
          delegation_chain: '[]',
          on_behalf_of: null,
        },
      ])
    })

    it('refuses only the event that cannot be stored; its concurrent neighbours are written', async () => {
      const results = await Promise.allSettled([
        audit.append(sampleEvent(0)),
        audit.append(sampleEvent(1)),
        audit.append({
          type: 'test.appended',
          actor: { type: 'system', id: 't' },
          data: { n: 1n },
        }),
        audit.append(sampleEvent(2)),
      ])
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ])
      expect(String((results[2] as PromiseRejectedResult).reason)).toContain(
        'audit event test.appended cannot be stored',
      )
      expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 3 })
    })

    it('resolves each append only once its record is committed and readable elsewhere', async () => {
      const other = await openMigrated(database.url)
      try {
        const records = await Promise.all(
          Array.from({ length: 50 }, (_, i) => audit.append(sampleEvent(i))),
        )
        const seen = await other.db.selectFrom('audit_events').select(['seq', 'hash']).execute()
        expect(
          seen.map((r) => [Number(r.seq), r.hash]).sort((a, b) => Number(a[0]) - Number(b[0])),
        ).toEqual(records.map((r) => [r.seq, r.hash]).sort((a, b) => Number(a[0]) - Number(b[0])))
      } finally {
        await other.close()
      }
    })
  })
}
