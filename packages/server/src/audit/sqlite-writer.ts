import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * One audit record on its way to the writer thread, as a tuple (the batch crosses to the thread
 * as one JSON string, far cheaper to copy than objects): its canonical content (see
 * `recordContent`) split around the two values only the writer knows — content = before +
 * JSON(prevHash) + middle + seq + after — then the stored columns in table order.
 */
export type WriterItem = [
  before: string,
  middle: string,
  after: string,
  time: string,
  type: string,
  actor: string,
  onBehalfOf: string | null,
  delegationChain: string,
  target: string | null,
  decision: string | null,
  reason: string | null,
  requestId: string | null,
  data: string,
]

/** Where the writer put each record: [seq, prevHash, hash]. */
export type WriterPlacement = [number, string, string]

export interface SqliteAuditWriter {
  /** Links and inserts the items after the chain head in one durable transaction. */
  write(items: WriterItem[]): Promise<WriterPlacement[]>
  close(): Promise<void>
}

/**
 * The writer thread. Plain JavaScript run with `eval` so the same code serves the built package
 * and the TypeScript sources under test. It opens its own connection with the same settings as
 * store/db.ts (WAL, `synchronous=FULL`: COMMIT returns after the fsync), takes SQLite's write
 * lock with BEGIN IMMEDIATE (so other processes stay linear), reads the head and hashes each
 * record after it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const SQLite = require(workerData.driver)
const db = new SQLite(workerData.database)
db.pragma('journal_mode = WAL')
db.pragma('busy_timeout = 10000')
db.pragma('synchronous = FULL')
db.pragma('foreign_keys = ON')
let statements
parentPort.on('message', ({ id, batch }) => {
  try {
    statements ??= {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      head: db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare('INSERT INTO audit_events (seq, time, type, actor, on_behalf_of, delegation_chain, target, decision, reason, request_id, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    }
    const s = statements
    s.begin.run()
    try {
      const head = s.head.get()
      let seq = head ? Number(head.seq) : 0
      let prevHash = head ? head.hash : workerData.genesis
      const placed = []
      for (const [before, middle, after, ...columns] of JSON.parse(batch)) {
        seq += 1
        const content = before + JSON.stringify(prevHash) + middle + seq + after
        const hash = createHash('sha256').update(content).digest('hex')
        s.insert.run(seq, ...columns, prevHash, hash)
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
    { resolve(p: WriterPlacement[]): void; reject(err: unknown): void }
  >()
  let idleTimer: NodeJS.Timeout | undefined

  function failAll(err: unknown): void {
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }

  function start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, database, genesis } })
    w.unref()
    w.on('message', (m: { id: number; placed?: WriterPlacement[]; error?: string }) => {
      const p = pending.get(m.id)
      if (!p) return
      pending.delete(m.id)
      if (pending.size === 0) {
        w.unref()
        idleTimer = setTimeout(() => void stop(), IDLE_MS).unref()
      }
      if (m.error !== undefined) p.reject(new Error(`audit write failed: ${m.error}`))
      else p.resolve(m.placed as WriterPlacement[])
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
    write(items) {
      clearTimeout(idleTimer)
      worker ??= start()
      const w = worker
      const id = nextId++
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject })
        // While a batch is out, the process must not exit under its caller.
        w.ref()
        w.postMessage({ id, batch: JSON.stringify(items) })
      })
    },
    close: stop,
  }
}
