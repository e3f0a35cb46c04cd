import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { AuditWrites } from './types.js'

/**
 * One audit event on its way to the writer thread: the JSON array
 * `[type, actor, onBehalfOf, delegationChain, target, decision, reason, requestId, data]`, as the
 * JSON columns will give it back. A batch crosses to the thread as one string, far cheaper to
 * copy than objects.
 */
export type WriterItem = string

/** Where the writer put each record: [seq, prevHash, hash]. */
export type WriterPlacement = [number, string, string]

export interface SqliteAuditWriter {
  /**
   * Links and inserts the items, all at `time`, after the chain head in one durable transaction,
   * each after its rows (`writes`, by index; null for none). An item whose condition changed no
   * row is left out: nothing of it is written, and its placement is null.
   */
  write(
    time: string,
    items: WriterItem[],
    writes?: readonly (AuditWrites | null)[],
  ): Promise<(WriterPlacement | null)[]>
  close(): Promise<void>
}

/**
 * The writer thread. Plain JavaScript run with `eval` so the same code serves the built package
 * and the TypeScript sources under test. It opens its own connection with the same settings as
 * store/db.ts (WAL, `synchronous=FULL`: COMMIT returns after the fsync), takes SQLite's write
 * lock with BEGIN IMMEDIATE (so other processes stay linear), reads the head, and for each event
 * runs the rows it records (its condition first: when that changes no row the event is skipped),
 * builds the canonical content of `recordContent`, hashes it (crypto's one-shot `hash`: a third
 * less work than a `createHash` object per record) and inserts the row. The work is
 * here rather than on the event loop, which serves the requests.
 *
 * `canonical` is lib/canonical-json.ts's `canonicalJson` for values that came out of `JSON.parse`
 * (no undefined members, no non-finite numbers, so nothing to drop or refuse), written as plain
 * loops: it runs for every member of every record, and the general function's entries, filter,
 * sort comparator and joins made about a tenth of this thread's work per event. The default sort
 * compares UTF-16 code units, the order canonicalJson uses. The audit tests verify every chain
 * they write with the general function (test/audit/canonical-content.test.ts holds the awkward
 * cases), so the two cannot drift apart unnoticed.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { hash: digest } = require('node:crypto')
function canonical(value) {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value)
  let out
  if (Array.isArray(value)) {
    out = '['
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonical(value[i])
    return out + ']'
  }
  const keys = Object.keys(value).sort()
  out = '{'
  for (let i = 0; i < keys.length; i++) {
    out += (i === 0 ? '' : ',') + JSON.stringify(keys[i]) + ':' + canonical(value[keys[i]])
  }
  return out + '}'
}
const SQLite = require(workerData.driver)
const db = new SQLite(workerData.database)
db.pragma('journal_mode = WAL')
db.pragma('busy_timeout = 10000')
db.pragma('synchronous = FULL')
db.pragma('foreign_keys = ON')
let statements
// The statements of the events' rows, prepared once per SQL text (a few kinds, repeated).
const prepared = new Map()
function run(sql, parameters) {
  let statement = prepared.get(sql)
  if (!statement) {
    if (prepared.size >= 200) prepared.clear()
    statement = db.prepare(sql)
    prepared.set(sql, statement)
  }
  return statement.run(...parameters).changes
}
parentPort.on('message', ({ id, time, batch, writes }) => {
  try {
    statements ??= {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      head: db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare('INSERT INTO audit_events (seq, time, type, actor, on_behalf_of, delegation_chain, target, decision, reason, request_id, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    }
    const s = statements
    const timeJson = JSON.stringify(time)
    s.begin.run()
    try {
      const head = s.head.get()
      let seq = head ? Number(head.seq) : 0
      let prevHash = head ? head.hash : workerData.genesis
      const placed = []
      const rows = writes === undefined ? [] : JSON.parse(writes)
      const items = JSON.parse(batch)
      for (let n = 0; n < items.length; n++) {
        const [type, actor, onBehalfOf, delegationChain, target, decision, reason, requestId, data] = items[n]
        const w = rows[n]
        if (w) {
          if (w.condition && run(w.condition.sql, w.condition.parameters) === 0) {
            placed.push(null)
            continue
          }
          for (const x of w.writes) run(x.sql, x.parameters)
        }
        seq += 1
        // recordContent's members in canonical (sorted) order.
        const content = '{"actor":' + canonical(actor) + ',"data":' + canonical(data) +
          ',"decision":' + canonical(decision) + ',"delegationChain":' + canonical(delegationChain) +
          ',"onBehalfOf":' + canonical(onBehalfOf) + ',"prevHash":' + JSON.stringify(prevHash) +
          ',"reason":' + canonical(reason) + ',"requestId":' + canonical(requestId) +
          ',"seq":' + seq + ',"target":' + canonical(target) + ',"time":' + timeJson +
          ',"type":' + canonical(type) + '}'
        const hash = digest('sha256', content, 'hex')
        s.insert.run(seq, time, type, JSON.stringify(actor), onBehalfOf ? JSON.stringify(onBehalfOf) : null,
          JSON.stringify(delegationChain), target ? JSON.stringify(target) : null, decision, reason,
          requestId, JSON.stringify(data), prevHash, hash)
        placed.push([seq, prevHash, hash])
        prevHash = hash
      }
      s.commit.run()
      parentPort.postMessage({ id, placed })
    } catch (err) {
      if (db.inTransaction) s.rollback.run()
      throw err
    }
  } catch (err) {
    parentPort.postMessage({ id, error: err && err.message ? err.message : String(err) })
  }
})
`

/** A writer thread idle this long exits; the next append starts another. */
const IDLE_MS = 10_000

/**
 * Appends audit records to a SQLite file from a worker thread with its own connection, so the
 * fsync of each commit (`synchronous=FULL`) never blocks the event loop. Each `write` settles
 * only after its COMMIT returned in the worker. The thread is started on first use, does not keep
 * the process alive while idle, and stops after `IDLE_MS` without work or when closed.
 */
export function createSqliteAuditWriter(database: string, genesis: string): SqliteAuditWriter {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  let worker: Worker | undefined
  let nextId = 0
  const pending = new Map<
    number,
    { resolve(p: (WriterPlacement | null)[]): void; reject(err: unknown): void }
  >()
  let idleTimer: NodeJS.Timeout | undefined

  function failAll(err: unknown): void {
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }

  function start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, database, genesis } })
    w.unref()
    w.on('message', (m: { id: number; placed?: (WriterPlacement | null)[]; error?: string }) => {
      const p = pending.get(m.id)
      if (!p) return
      pending.delete(m.id)
      if (pending.size === 0) {
        w.unref()
        idleTimer = setTimeout(() => void stop(), IDLE_MS).unref()
      }
      if (m.error !== undefined) p.reject(new Error(`audit write failed: ${m.error}`))
      else p.resolve(m.placed as (WriterPlacement | null)[])
    })
    w.on('error', (err) => {
      if (worker === w) worker = undefined
      failAll(err)
    })
    w.on('exit', (code) => {
      if (worker === w) worker = undefined
      if (pending.size > 0) failAll(new Error(`audit writer thread exited (code ${code})`))
    })
    return w
  }

  async function stop(): Promise<void> {
    clearTimeout(idleTimer)
    const w = worker
    if (!w || pending.size > 0) return
    worker = undefined
    await w.terminate()
  }

  return {
    write(time, items, writes) {
      clearTimeout(idleTimer)
      worker ??= start()
      const w = worker
      const id = nextId++
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject })
        // While a batch is out, the process must not exit under its caller.
        w.ref()
        w.postMessage({
          id,
          time,
          batch: `[${items.join(',')}]`,
          // One string, like the batch; only when some event brings rows.
          ...(writes?.some((x) => x !== null) && { writes: JSON.stringify(writes) }),
        })
      })
    },
    close: stop,
  }
}
