import { canonicalJson } from '../lib/canonical-json.js'
import type { Clock } from '../lib/clock.js'
import { sha256Hex } from '../lib/random.js'
import type { Store } from '../store/db.js'
import { LOCKS, runExclusive } from '../store/exclusive.js'
import type { AuditEventRow } from '../store/schema.js'
import type { AuditEventInput, AuditLog, AuditRecord } from './types.js'

/** prev_hash of the first record. */
export const GENESIS_HASH = '0'.repeat(64)

/** The content a record's hash covers: everything but the hash itself. */
export function recordContent(record: Omit<AuditRecord, 'hash'>): string {
  return canonicalJson({
    seq: record.seq,
    time: record.time,
    type: record.type,
    actor: record.actor,
    onBehalfOf: record.onBehalfOf,
    delegationChain: record.delegationChain,
    target: record.target,
    decision: record.decision,
    reason: record.reason,
    requestId: record.requestId,
    data: record.data,
    prevHash: record.prevHash,
  })
}

/** Computes the hash of a record from its content. */
export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(recordContent(record))
}

/** Turns a stored row back into a record. */
export function rowToRecord(row: AuditEventRow): AuditRecord {
  return {
    seq: Number(row.seq),
    time: row.time,
    type: row.type,
    actor: JSON.parse(row.actor),
    onBehalfOf: row.on_behalf_of === null ? null : JSON.parse(row.on_behalf_of),
    delegationChain: JSON.parse(row.delegation_chain),
    target: row.target === null ? null : JSON.parse(row.target),
    decision: row.decision,
    reason: row.reason,
    requestId: row.request_id,
    data: JSON.parse(row.data),
    prevHash: row.prev_hash,
    hash: row.hash,
  }
}

/**
 * The audit chain. Each append runs in one transaction that holds the chain's write lock, reads
 * the head and inserts the next record; the primary key on `seq` is the last line of defence
 * against a fork.
 */
export function createAuditLog(store: Store, clock: Clock): AuditLog {
  return {
    async append(event: AuditEventInput): Promise<AuditRecord> {
      return runExclusive(store, LOCKS.auditChain, async (conn) => {
        const head = await conn
          .selectFrom('audit_events')
          .select(['seq', 'hash'])
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirst()
        const base: Omit<AuditRecord, 'hash'> = {
          seq: head ? Number(head.seq) + 1 : 1,
          time: clock.now().toISOString(),
          type: event.type,
          actor: event.actor,
          onBehalfOf: event.onBehalfOf ?? null,
          delegationChain: event.delegationChain ?? [],
          target: event.target ?? null,
          decision: event.decision ?? null,
          reason: event.reason ?? null,
          requestId: event.requestId ?? null,
          data: event.data ?? {},
          prevHash: head?.hash ?? GENESIS_HASH,
        }
        const record: AuditRecord = { ...base, hash: hashRecord(base) }
        await conn
          .insertInto('audit_events')
          .values({
            seq: record.seq,
            time: record.time,
            type: record.type,
            actor: JSON.stringify(record.actor),
            on_behalf_of: record.onBehalfOf ? JSON.stringify(record.onBehalfOf) : null,
            delegation_chain: JSON.stringify(record.delegationChain),
            target: record.target ? JSON.stringify(record.target) : null,
            decision: record.decision,
            reason: record.reason,
            request_id: record.requestId,
            data: JSON.stringify(record.data),
            prev_hash: record.prevHash,
            hash: record.hash,
          })
          .execute()
        return record
      })
    },
  }
}
