import { CompiledQuery, type Kysely } from 'kysely'
import { canonicalJson, canonicalParsedJson } from '../lib/canonical-json.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Gate } from '../lib/gate.js'
import { sha256Hex } from '../lib/random.js'
import type { Store } from '../store/db.js'
import { LOCKS, runExclusive } from '../store/exclusive.js'
import type { AuditEventRow, Database } from '../store/schema.js'
import {
  createSqliteAuditWriter,
  type SqliteAuditWriter,
  type WriterItem,
  type WriterPlacement,
} from './sqlite-writer.js'
import type { AuditEventInput, AuditLog, AuditRecord, AuditWrite, AuditWrites } from './types.js'

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

/**
 * `recordContent` of a record whose values came out of `JSON.parse`, written out member by member
 * in canonical (sorted) order with `canonicalParsedJson`: the same bytes, as the writer thread
 * (sqlite-writer.ts) builds them, without the general function's entries, filters and sorts.
 */
function parsedRecordContent(r: Omit<AuditRecord, 'hash'>): string {
  const c = canonicalParsedJson
  return `{"actor":${c(r.actor)},"data":${c(r.data)},"decision":${c(r.decision)},"delegationChain":${c(r.delegationChain)},"onBehalfOf":${c(r.onBehalfOf)},"prevHash":${c(r.prevHash)},"reason":${c(r.reason)},"requestId":${c(r.requestId)},"seq":${c(r.seq)},"target":${c(r.target)},"time":${c(r.time)},"type":${c(r.type)}}`
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

/** Most records one transaction takes; a backlog beyond it commits in several. */
const MAX_BATCH = 200
/** Rows per INSERT statement, well under SQLite's and PostgreSQL's bound-parameter limits. */
const ROWS_PER_INSERT = 100

interface Pending {
  event: AuditEventInput
  /** The rows committed with the record (`appendWith`). */
  writes?: AuditWrites | undefined
  resolve(record: AuditRecord | null): void
  reject(err: unknown): void
}

/** What committing one pending event came to: its record, null (condition unmet), or its error. */
type Outcome = AuditRecord | Error | null

/**
 * The audit chain. Appends are group-committed: while one transaction is committing, the appends
 * that arrive queue up and then go into the next transaction together, so a busy process pays
 * one durable commit for many events instead of one each. Each transaction holds the chain's
 * write lock (so other processes on the same database stay linear), reads the head and inserts
 * the queued records after it; each caller's promise settles only after the commit that holds its
 * record. The primary key on `seq` is the last line of defence against a fork.
 */
export function createAuditLog(store: Store, clock: Clock): AuditLog {
  let queue: Pending[] = []
  let flushing = false
  const drained: (() => void)[] = []
  // SQLite file: commit from a writer thread, so the fsync does not stall the event loop. The
  // store's write gate keeps this process's own connection from waiting on SQLite's lock meanwhile.
  const gate = store.writeGate
  const writer =
    store.dialect === 'sqlite' && store.location !== ':memory:' && gate
      ? createSqliteAuditWriter(store.location, GENESIS_HASH)
      : undefined
  if (writer) {
    store.beforeClose?.(async () => {
      if (flushing) await new Promise<void>((resolve) => drained.push(resolve))
      await writer.close()
    })
  }
  const commit = (batch: Pending[]): Promise<Outcome[]> =>
    batch.length === 0
      ? Promise.resolve([])
      : writer && gate
        ? writeBatch(writer, gate, clock, batch)
        : runExclusive(store, LOCKS.auditChain, (conn) =>
            appendBatch(conn, store.dialect, clock, batch),
          )

  async function flush(): Promise<void> {
    try {
      let batch = takeBatch()
      let committing = commit(batch)
      while (batch.length > 0) {
        let outcomes: Outcome[]
        try {
          outcomes = await committing
        } catch (err) {
          await commitAlone(batch, err)
          batch = takeBatch()
          committing = commit(batch)
          continue
        }
        // Hand the next batch to the database before settling this one: the callers' work after
        // their append (signing, answering) then runs while that commit is under way, instead of
        // the commit waiting for it. Its records chain after this batch, which has committed.
        const done = batch
        batch = takeBatch()
        committing = commit(batch)
        done.forEach((pending, i) => {
          settle(pending, outcomes[i] as Outcome)
        })
      }
    } finally {
      flushing = false
      for (const resolve of drained.splice(0)) resolve()
    }
  }

  /** The next transaction's appends, in order; none when the queue is empty. */
  function takeBatch(): Pending[] {
    const batch = queue.slice(0, MAX_BATCH)
    queue = queue.slice(MAX_BATCH)
    return batch
  }

  /**
   * The batch is one transaction, rolled back whole. So that one record the database refuses
   * cannot fail the records of other requests that shared its commit, each is committed again on
   * its own; only the bad one fails.
   */
  async function commitAlone(batch: Pending[], err: unknown): Promise<void> {
    if (batch.length === 1) {
      batch[0]?.reject(err)
      return
    }
    for (const pending of batch) {
      try {
        settle(pending, (await commit([pending]))[0] as Outcome)
      } catch (alone) {
        pending.reject(alone)
      }
    }
  }

  function settle(pending: Pending, outcome: Outcome): void {
    if (outcome instanceof Error) pending.reject(outcome)
    else pending.resolve(outcome)
  }

  function enqueue(pending: Pending): void {
    queue.push(pending)
    if (!flushing) {
      flushing = true
      // Start the commit after the event loop's current I/O phase, not now: the appends of
      // every request that reaches this point in the same turn then share one transaction
      // (and one fsync, which better-sqlite3 runs on this thread) instead of one each.
      setImmediate(() => void flush())
    }
  }

  return {
    append(event: AuditEventInput): Promise<AuditRecord> {
      return new Promise((resolve, reject) => {
        // Without a condition an append always yields its record.
        enqueue({ event, resolve: resolve as (r: AuditRecord | null) => void, reject })
      })
    },
    appendWith(event: AuditEventInput, writes: AuditWrites): Promise<AuditRecord | null> {
      return new Promise((resolve, reject) => enqueue({ event, writes, resolve, reject }))
    },
  }
}

/**
 * Encodes the batch for the writer thread and turns its placements into records. The event
 * thread does only what it must: one `JSON.stringify` per event (which also gives a Date its
 * string, drops undefined members and turns NaN into null, exactly as the JSON columns will give
 * them back, and throws for what JSON cannot hold, so such an event fails alone; the text columns
 * get their `storableText`). Canonical content, hashing, column encoding and the commit all run in
 * the writer thread.
 */
async function writeBatch(
  writer: SqliteAuditWriter,
  gate: Gate,
  clock: Clock,
  batch: Pending[],
): Promise<Outcome[]> {
  const time = clock.now().toISOString()
  const encoded: (WriterItem | Error)[] = []
  const items: WriterItem[] = []
  const writes: (AuditWrites | null)[] = []
  for (const { event, writes: w } of batch) {
    try {
      const item = encodeWriterItem(event)
      encoded.push(item)
      items.push(item)
      writes.push(w ?? null)
    } catch (err) {
      // Its rows are not sent either: an event that cannot be recorded writes nothing.
      encoded.push(unstorable(event, err))
    }
  }
  if (items.length === 0) return encoded as Error[]
  const release = await gate.acquire()
  let placed: (WriterPlacement | null)[]
  try {
    placed = await writer.write(time, items, writes)
  } finally {
    release()
  }
  let i = 0
  return encoded.map((item) => {
    if (item instanceof Error) return item
    const placement = placed[i++]
    if (!placement) return null
    const [seq, prevHash, hash] = placement
    const [type, actor, onBehalfOf, delegationChain, target, decision, reason, requestId, data] =
      JSON.parse(item) as WriterItemFields
    return {
      seq,
      time,
      type,
      actor,
      onBehalfOf,
      delegationChain,
      target,
      decision,
      reason,
      requestId,
      data,
      prevHash,
      hash,
    }
  })
}

/** The fields of a `WriterItem`, decoded. */
type WriterItemFields = [
  type: string,
  actor: AuditRecord['actor'],
  onBehalfOf: AuditRecord['onBehalfOf'],
  delegationChain: AuditRecord['delegationChain'],
  target: AuditRecord['target'],
  decision: AuditRecord['decision'],
  reason: AuditRecord['reason'],
  requestId: AuditRecord['requestId'],
  data: AuditRecord['data'],
]

/**
 * What a plain text column cannot keep: a NUL, which PostgreSQL text cannot hold at all
 * (`invalid byte sequence for encoding "UTF8": 0x00`, failing the whole group commit), and a lone
 * UTF-16 surrogate, which both drivers turn into U+FFFD on the way in (so the stored record
 * would no longer match its hash).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding the NUL is the point.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/**
 * The value a plain text column of the chain (`type`, `decision`, `reason`, `request_id`) stores:
 * NUL and lone surrogates replaced by U+FFFD. The record is hashed after this, so verification
 * sees what was stored. The JSON columns need nothing: JSON writes both as escapes (`\u0000`),
 * which any text column holds, so `actor`, `target` and `data` keep exactly what was given.
 */
export function storableText<T extends string | null | undefined>(value: T): T {
  return (typeof value === 'string' ? value.replace(UNSTORABLE, '\ufffd') : value) as T
}

/** An event as the writer thread takes it (see `WriterItem`); throws when JSON cannot hold it. */
function encodeWriterItem(event: AuditEventInput): WriterItem {
  return JSON.stringify([
    storableText(event.type),
    event.actor,
    event.onBehalfOf ?? null,
    event.delegationChain ?? [],
    event.target ?? null,
    storableText(event.decision ?? null),
    storableText(event.reason ?? null),
    storableText(event.requestId ?? null),
    event.data ?? {},
  ])
}

function unstorable(event: AuditEventInput, err: unknown): DeputyError {
  return new DeputyError(
    'ERR_INVALID_INPUT',
    `audit event ${event.type} cannot be stored: ${(err as Error).message}`,
    { cause: err },
  )
}

/**
 * Links the batch's events after the current head and inserts them. An event that cannot be
 * hashed (a non-finite number in `data`) fails alone; the others are still written.
 */
async function appendBatch(
  conn: Kysely<Database>,
  dialect: Store['dialect'],
  clock: Clock,
  batch: Pending[],
): Promise<Outcome[]> {
  const head = await conn
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst()
  let seq = head ? Number(head.seq) : 0
  let prevHash = head?.hash ?? GENESIS_HASH
  const time = clock.now().toISOString()
  const outcomes: Outcome[] = []
  const rows: RowValues[] = []
  for (const { event, writes } of batch) {
    const base: Omit<AuditRecord, 'hash'> = {
      seq: seq + 1,
      time,
      type: storableText(event.type),
      actor: event.actor,
      onBehalfOf: event.onBehalfOf ?? null,
      delegationChain: event.delegationChain ?? [],
      target: event.target ?? null,
      decision: storableText(event.decision ?? null),
      reason: storableText(event.reason ?? null),
      requestId: storableText(event.requestId ?? null),
      data: event.data ?? {},
      prevHash,
    }
    let stored: Omit<AuditRecord, 'hash'>
    try {
      // Hash exactly what the JSON columns will give back (a Date becomes its string, NaN null),
      // or a record holding such values would later fail verification. Checked before the
      // event's rows are written: an event that cannot be recorded writes nothing.
      stored = JSON.parse(JSON.stringify(base)) as Omit<AuditRecord, 'hash'>
    } catch (err) {
      outcomes.push(unstorable(event, err))
      continue
    }
    if (writes && !(await applyWrites(conn, writes))) {
      outcomes.push(null)
      continue
    }
    const record: AuditRecord = { ...stored, hash: sha256Hex(parsedRecordContent(stored)) }
    rows.push(recordToRow(record))
    outcomes.push(record)
    seq = record.seq
    prevHash = record.hash
  }
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    await conn.executeQuery(insertRows(dialect, rows.slice(i, i + ROWS_PER_INSERT)))
  }
  return outcomes
}

const toQuery = (w: AuditWrite) => CompiledQuery.raw(w.sql, [...w.parameters])

/**
 * Runs an event's rows in the chain's transaction: the condition first, and when it changed no
 * row, nothing else (false). A statement that fails fails the batch, which is rolled back whole.
 */
async function applyWrites(conn: Kysely<Database>, writes: AuditWrites): Promise<boolean> {
  if (writes.condition) {
    const result = await conn.executeQuery(toQuery(writes.condition))
    if (Number(result.numAffectedRows ?? 0n) === 0) return false
  }
  for (const w of writes.writes) await conn.executeQuery(toQuery(w))
  return true
}

/** The columns of `audit_events`, in the order `recordToRow` gives their values. */
const COLUMNS =
  'seq, time, type, actor, on_behalf_of, delegation_chain, target, decision, reason, request_id, data, prev_hash, hash'
const COLUMN_COUNT = 13

/** One row's values, in the order of `COLUMNS`. */
type RowValues = (string | number | null)[]

/**
 * One multi-row INSERT, written out rather than built with Kysely's insert builder: the chain
 * inserts on every append, and parsing, freezing and compiling a 13-column values list per row
 * was about a tenth of an append's work on the event loop.
 */
function insertRows(dialect: Store['dialect'], rows: RowValues[]): CompiledQuery {
  const groups: string[] = []
  let n = 0
  for (let r = 0; r < rows.length; r++) {
    const marks: string[] = []
    for (let col = 0; col < COLUMN_COUNT; col++)
      marks.push(dialect === 'postgres' ? `$${++n}` : '?')
    groups.push(`(${marks.join(', ')})`)
  }
  return CompiledQuery.raw(
    `INSERT INTO audit_events (${COLUMNS}) VALUES ${groups.join(', ')}`,
    rows.flat(),
  )
}

function recordToRow(record: AuditRecord): RowValues {
  return [
    record.seq,
    record.time,
    record.type,
    JSON.stringify(record.actor),
    record.onBehalfOf ? JSON.stringify(record.onBehalfOf) : null,
    JSON.stringify(record.delegationChain),
    record.target ? JSON.stringify(record.target) : null,
    record.decision,
    record.reason,
    record.requestId,
    JSON.stringify(record.data),
    record.prevHash,
    record.hash,
  ]
}
