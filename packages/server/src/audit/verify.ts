import type { Store } from '../store/db.js'
import type { AuditEventRow } from '../store/schema.js'
import { GENESIS_HASH, hashRecord, rowToRecord } from './chain.js'
import { auditRows } from './query.js'

/** The outcome of walking the chain. */
export interface AuditVerification {
  ok: boolean
  /** Records found intact: all of them when `ok`, those before the first bad one otherwise. */
  records: number
  /** The last intact record; an operator who notes it can later tell if the tail was cut off. */
  head?: { seq: number; hash: string }
  /** The first record that breaks the chain, and what is wrong with it, in words for a person. */
  firstBad?: { seq: number; problem: string }
}

/**
 * Walks the whole chain in seq order, a page at a time, and checks that the seqs run 1, 2, 3, …
 * without gaps, that each record names the hash of the one before it, and that each record's hash
 * matches its content. Stops at the first break and says what it most likely is.
 *
 * A chain cannot show that records were cut off its end; compare `head` with a value kept
 * elsewhere for that.
 */
export async function verifyAuditChain(
  store: Store,
  options: { pageSize?: number } = {},
): Promise<AuditVerification> {
  let expectedSeq = 1
  let prevHash = GENESIS_HASH
  let head: AuditVerification['head']
  const broken = (seq: number, problem: string): AuditVerification => ({
    ok: false,
    records: expectedSeq - 1,
    ...(head ? { head } : {}),
    firstBad: { seq, problem },
  })

  for await (const row of auditRows(store, options)) {
    const seq = Number(row.seq)
    if (seq !== expectedSeq) {
      const last = seq - 1
      return broken(
        expectedSeq,
        last === expectedSeq
          ? `record ${expectedSeq} is missing (deleted?)`
          : `records ${expectedSeq} to ${last} are missing (deleted?)`,
      )
    }
    if (row.prev_hash !== prevHash) return broken(...(await diagnoseLink(store, row, seq)))
    if (!contentMatchesHash(row)) {
      return broken(seq, `record ${seq}: content does not match its hash (edited?)`)
    }
    prevHash = row.hash
    head = { seq, hash: row.hash }
    expectedSeq++
  }
  return { ok: true, records: expectedSeq - 1, ...(head ? { head } : {}) }
}

function contentMatchesHash(row: AuditEventRow): boolean {
  try {
    const { hash, ...content } = rowToRecord(row)
    return hashRecord(content) === hash
  } catch {
    // A JSON column that no longer parses was edited by hand.
    return false
  }
}

/**
 * Record `seq` does not name the hash of the record before it. Hashes are unique, so finding the
 * record it does name tells an insertion (it names an earlier record) from a reordering (it names
 * a later one).
 */
async function diagnoseLink(
  store: Store,
  row: AuditEventRow,
  seq: number,
): Promise<[number, string]> {
  const named =
    row.prev_hash === GENESIS_HASH
      ? 0
      : await store.db
          .selectFrom('audit_events')
          .select('seq')
          .where('hash', '=', row.prev_hash)
          .executeTakeFirst()
          .then((r) => (r ? Number(r.seq) : undefined))
  if (named !== undefined && named < seq - 1) {
    const first = named + 1
    const last = seq - 1
    const which = first === last ? `record ${first} was` : `records ${first} to ${last} were`
    const after = named === 0 ? 'the start of the chain' : `record ${named}`
    return [first, `${which} inserted: record ${seq} was written right after ${after}`]
  }
  if (named !== undefined && named > seq) {
    return [
      seq,
      `record ${seq}: is out of order, it was written after record ${named} (reordered?)`,
    ]
  }
  if (!contentMatchesHash(row)) {
    return [seq, `record ${seq}: content does not match its hash (edited?)`]
  }
  if (seq === 1) {
    return [
      1,
      'record 1: does not start the chain (a record before it deleted, or record 1 forged?)',
    ]
  }
  // Record `seq` is self-consistent but names a hash no record has: most likely the record
  // before it was edited and given a fresh hash to hide it.
  return [
    seq - 1,
    `record ${seq - 1}: its hash is not the one record ${seq} was chained to (edited and re-hashed, or record ${seq} forged?)`,
  ]
}
