import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hashRecord } from '../../src/audit/chain.js'
import type { AuditRecord } from '../../src/audit/types.js'
import type { Store } from '../../src/store/db.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { openMigrated, runCli, seedChain } from './helpers.js'

// Issue 2 §6: `deputy audit verify` detects any edited, deleted, inserted or reordered record
// and names the first bad one. Each test changes the database behind Deputy's back with SQL, as
// someone with database access would, and runs the real CLI.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`deputy audit verify (${dialect.name})`, () => {
    let database: TestDatabase
    let records: AuditRecord[]

    beforeEach(async () => {
      database = await dialect.create()
      records = await seedChain(database.url, 20)
    })
    afterEach(() => database.dispose())

    async function tamper(work: (store: Store) => Promise<void>): Promise<void> {
      const store = await openMigrated(database.url)
      try {
        await work(store)
      } finally {
        await store.close()
      }
    }

    async function expectBroken(message: string): Promise<void> {
      const result = await runCli(database.url, ['audit', 'verify'])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe('')
      // One line for a person, no stack trace.
      expect(result.stderr).toBe(`deputy: audit chain broken at ${message}\n`)
    }

    it('passes an intact chain and counts its records', async () => {
      const result = await runCli(database.url, ['audit', 'verify'])
      expect(result).toMatchObject({
        code: 0,
        stdout: 'audit chain intact: 20 records; no checkpoint yet (`deputy audit checkpoint`)\n',
      })
    })

    it('names a record whose field was edited', async () => {
      await tamper(async (store) => {
        await sql`UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 10`.execute(
          store.db,
        )
      })
      await expectBroken('record 10: content does not match its hash (edited?)')
    })

    it('names a record whose refusal was rewritten into an allow', async () => {
      expect(records[7]?.decision).toBe('deny')
      await tamper(async (store) => {
        await sql`UPDATE audit_events SET decision = 'allow', reason = NULL WHERE seq = 8`.execute(
          store.db,
        )
      })
      await expectBroken('record 8: content does not match its hash (edited?)')
    })

    it('names a record that was edited and given a freshly computed hash', async () => {
      const { hash: _, ...content } = records[9] as AuditRecord
      const forged = { ...content, data: { ...content.data, zeta: 'changed' } }
      await tamper(async (store) => {
        await sql`UPDATE audit_events SET data = ${JSON.stringify(forged.data)}, hash = ${hashRecord(forged)} WHERE seq = 10`.execute(
          store.db,
        )
      })
      await expectBroken(
        'record 10: its hash is not the one record 11 was chained to (edited and re-hashed, or record 11 forged?)',
      )
    })

    it('names a deleted middle record', async () => {
      await tamper(async (store) => {
        await sql`DELETE FROM audit_events WHERE seq = 12`.execute(store.db)
      })
      await expectBroken('record 12 is missing (deleted?)')
    })

    it('names a deleted first record', async () => {
      await tamper(async (store) => {
        await sql`DELETE FROM audit_events WHERE seq = 1`.execute(store.db)
      })
      await expectBroken('record 1 is missing (deleted?)')
    })

    it('names a forged record inserted in the middle with a well-formed hash and link', async () => {
      // The forger shifts records 10… up by one and writes a record 10 that links to record 9
      // and carries the right hash of its own content.
      const forged: Omit<AuditRecord, 'hash'> = {
        ...(records[9] as AuditRecord),
        type: 'user.created',
        reason: 'backdated',
        prevHash: (records[8] as AuditRecord).hash,
      }
      const hash = hashRecord(forged)
      await tamper(async (store) => {
        await sql`UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 10`.execute(store.db)
        await sql`UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000`.execute(store.db)
        await sql`INSERT INTO audit_events (seq, time, type, actor, on_behalf_of, delegation_chain, target, decision, reason, request_id, data, prev_hash, hash)
          VALUES (10, ${forged.time}, ${forged.type}, ${JSON.stringify(forged.actor)}, ${forged.onBehalfOf ? JSON.stringify(forged.onBehalfOf) : null}, ${JSON.stringify(forged.delegationChain)}, ${JSON.stringify(forged.target)}, ${forged.decision}, ${forged.reason}, ${forged.requestId}, ${JSON.stringify(forged.data)}, ${forged.prevHash}, ${hash})`.execute(
          store.db,
        )
      })
      await expectBroken('record 10 was inserted: record 11 was written right after record 9')
    })

    it('names a record moved to another position (two records swapped)', async () => {
      await tamper(async (store) => {
        await sql`UPDATE audit_events SET seq = 0 WHERE seq = 8`.execute(store.db)
        await sql`UPDATE audit_events SET seq = 8 WHERE seq = 12`.execute(store.db)
        await sql`UPDATE audit_events SET seq = 12 WHERE seq = 0`.execute(store.db)
      })
      await expectBroken('record 8: is out of order, it was written after record 11 (reordered?)')
    })

    it('names the earlier of two neighbours that swapped places', async () => {
      await tamper(async (store) => {
        await sql`UPDATE audit_events SET seq = 0 WHERE seq = 15`.execute(store.db)
        await sql`UPDATE audit_events SET seq = 15 WHERE seq = 16`.execute(store.db)
        await sql`UPDATE audit_events SET seq = 16 WHERE seq = 0`.execute(store.db)
      })
      await expectBroken('record 15: is out of order, it was written after record 16 (reordered?)')
    })

    it('reports the first bad record as JSON with --json, still exiting 1', async () => {
      await tamper(async (store) => {
        await sql`DELETE FROM audit_events WHERE seq = 5`.execute(store.db)
        await sql`UPDATE audit_events SET reason = 'x' WHERE seq = 15`.execute(store.db)
      })
      const result = await runCli(database.url, ['audit', 'verify', '--json'])
      expect(result.code).toBe(1)
      expect(JSON.parse(result.stdout)).toEqual({
        ok: false,
        records: 4,
        head: { seq: 4, hash: (records[3] as AuditRecord).hash },
        firstBad: { seq: 5, problem: 'record 5 is missing (deleted?)' },
        checkpoint: {},
      })
    })
  })
}
