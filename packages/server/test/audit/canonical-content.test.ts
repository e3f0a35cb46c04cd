import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAuditLog, hashRecord } from '../../src/audit/chain.js'
import type { AuditLog } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import type { Store } from '../../src/store/db.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { openMigrated } from './helpers.js'

/**
 * Values whose canonical JSON is easy to get wrong: keys that sort differently by UTF-16 code unit
 * than by code point (an astral character before U+FB00), escapes, control characters, a lone
 * surrogate, negative zero, exponents, nulls inside arrays, empty containers, nesting.
 */
const AWKWARD = {
  ﬀ: 'U+FB00 sorts after the surrogate pair of U+1F600 in UTF-16',
  '😀': 'astral',
  Z: 'upper case sorts before lower case',
  a: ['x', null, 0, -0, 1e21, 5e-7, 0.1, true, false, [], {}],
  é: { 'quote"': 'a "quoted" \\ backslash', control: '\u0000\u0007\n\t\u001f', lone: '\ud800' },
  '': 'the empty key sorts first',
  nested: { z: { y: { x: [{ b: 1, a: 2 }] } } },
}

// The SQLite file case runs the writer thread, which builds the hashed content itself; the
// verifier recomputes every hash with lib/canonical-json.ts, so the two must agree byte for byte.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `audit records hash their canonical content (${dialect.name})`,
    () => {
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

      it('writes awkward data, actors and targets so that the chain verifies', async () => {
        const records = await Promise.all([
          audit.append({
            type: 'test.appended',
            actor: { type: 'user', id: 'ü\u2028"', label: 'Zoë <z@example.com>' },
            onBehalfOf: { type: 'user', id: '😀' },
            delegationChain: [{ type: 'agent', id: 'a\\b' }],
            target: { type: 'thing', id: '\ud83d' },
            decision: 'allow',
            reason: 'line\nbreak',
            requestId: 'r-1',
            data: AWKWARD,
          }),
          audit.append({ type: 'test.appended', actor: { type: 'system', id: 'bare' } }),
        ])
        for (const record of records) expect(record.hash).toBe(hashRecord(record))
        expect(records[0]?.data).toEqual(JSON.parse(JSON.stringify(AWKWARD)))
        expect(await verifyAuditChain(store)).toMatchObject({ ok: true, records: 2 })
      })

      it('refuses a record whose content was changed after it was hashed', async () => {
        const record = await audit.append({
          type: 'test.appended',
          actor: { type: 'system', id: 't' },
          data: AWKWARD,
        })
        await store.db
          .updateTable('audit_events')
          .set({ data: JSON.stringify({ ...AWKWARD, Z: 'changed' }) })
          .where('seq', '=', record.seq)
          .execute()
        expect(await verifyAuditChain(store)).toMatchObject({
          ok: false,
          firstBad: { seq: record.seq },
        })
      })
    },
  )
}
