import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  SelectQueryNode,
  SqliteDialect,
  type SqliteDialectConfig,
  sql,
} from 'kysely'
import pg from 'pg'
import { isPostgresUrl } from '../config/load.js'
import { DeputyError } from '../lib/errors.js'
import { createGate, type Gate } from '../lib/gate.js'
import { createInvalidations, type Invalidations } from './invalidations.js'
import type { Database } from './schema.js'
import { localSignals, postgresSignals, type Signals } from './signals.js'

export type Dialect = 'sqlite' | 'postgres'

/** An open database: the typed query builder, which dialect it speaks, and how to close it. */
export interface Store {
  db: Kysely<Database>
  dialect: Dialect
  /** Where it lives, with any password removed, for messages. */
  location: string
  close(): Promise<void>
  /**
   * SQLite only: held while this process writes to the file, by `db` (from its first write or
   * `BEGIN` until it leaves the transaction) and by the audit chain's writer thread (for each
   * batch it commits). Two connections of one process then never wait for SQLite's write lock in
   * its busy handler, which would stall the event loop.
   */
  writeGate?: Gate
  /** Runs `hook` (once) when the store closes, before the connection does. */
  beforeClose?(hook: () => Promise<void>): void
  /** Messages to the other processes on this database (store/signals.ts). */
  signals: Signals
  /** Changes to cached rows, from any process on this database (store/invalidations.ts). */
  invalidations: Invalidations
  /** PostgreSQL only: the connection pool's clients right now (for /metrics). */
  poolStats?(): { total: number; idle: number; waiting: number }
}

/** How a store is opened. */
export interface StoreOptions {
  /** How often cached rows' change counters are read (config `cacheCheckIntervalMs`). */
  cacheCheckIntervalMs?: number
}

const PG_INT8 = 20

/**
 * Opens the database named by `database`: a `postgres://` URL, or a SQLite file (created with its
 * folder if missing). SQLite runs in WAL mode with a busy timeout so several processes (the server
 * and a CLI command) can share the file, and with `synchronous=FULL` so an acknowledged write —
 * an audit event above all — survives a crash of the machine, not only of the process.
 */
export function openStore(database: string, options: StoreOptions = {}): Store {
  const checks = { checkIntervalMs: options.cacheCheckIntervalMs }
  if (isPostgresUrl(database)) {
    const pool = new pg.Pool({
      connectionString: database,
      max: 10,
      // Epoch-millisecond BIGINTs fit in a double; read them back as numbers.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === PG_INT8
            ? (value: string) => Number(value)
            : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    })
    // An idle client's error (server restart) must not crash the process.
    pool.on('error', () => {})
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    const signals = postgresSignals(database, async (channel, payload) => {
      await sql`SELECT pg_notify(${channel}, ${payload})`.execute(db)
    })
    const invalidations = createInvalidations(db, signals, checks)
    return {
      db,
      dialect: 'postgres',
      location: redactUrl(database),
      signals,
      invalidations,
      poolStats: () => ({
        total: pool.totalCount,
        idle: pool.idleCount,
        waiting: pool.waitingCount,
      }),
      async close() {
        invalidations.close()
        await signals.close()
        await db.destroy()
      },
    }
  }

  let sqlite: SQLite.Database
  try {
    if (database !== ':memory:') mkdirSync(dirname(database), { recursive: true })
    sqlite = new SQLite(database)
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('busy_timeout = 10000')
    sqlite.pragma('synchronous = FULL')
    sqlite.pragma('foreign_keys = ON')
  } catch (err) {
    throw new DeputyError(
      'ERR_DATABASE',
      `cannot open SQLite database ${database}: ${(err as Error).message}`,
      { cause: err },
    )
  }
  const writeGate = createGate()
  const hooks: (() => Promise<void>)[] = []
  const db = new Kysely<Database>({
    dialect: new GatedSqliteDialect({ database: reusingStatements(sqlite) }, sqlite, writeGate),
  })
  const signals = localSignals()
  const invalidations = createInvalidations(db, signals, checks)
  return {
    db,
    dialect: 'sqlite',
    location: database,
    writeGate,
    signals,
    invalidations,
    beforeClose: (hook) => void hooks.push(hook),
    async close() {
      invalidations.close()
      for (const hook of hooks.splice(0)) await hook()
      await signals.close()
      await db.destroy()
    },
  }
}

/** Kysely's SQLite dialect, with the connection taking the store's write gate around writes. */
class GatedSqliteDialect extends SqliteDialect {
  readonly #sqlite: SQLite.Database
  readonly #gate: Gate

  constructor(config: SqliteDialectConfig, sqlite: SQLite.Database, gate: Gate) {
    super(config)
    this.#sqlite = sqlite
    this.#gate = gate
  }

  override createDriver(): Driver {
    const inner = super.createDriver()
    const connection = (conn: DatabaseConnection) => gatedConnection(conn, this.#sqlite, this.#gate)
    let wrapped: DatabaseConnection | undefined
    return {
      init: () => inner.init(),
      // SQLite has one connection; wrap it once.
      acquireConnection: async () => {
        const conn = await inner.acquireConnection()
        wrapped ??= connection(conn)
        return wrapped
      },
      // BEGIN IMMEDIATE takes the write lock at the start, waiting for it (busy_timeout). A
      // deferred BEGIN that reads and then writes must upgrade its lock, and SQLite refuses
      // that at once with "database is locked" when another process wrote meanwhile (it
      // cannot wait: its snapshot is stale). Every transaction here is a read-modify-write.
      beginTransaction: async (conn) => {
        await conn.executeQuery(CompiledQuery.raw('begin immediate'))
      },
      commitTransaction: (conn) => inner.commitTransaction(conn),
      rollbackTransaction: (conn) => inner.rollbackTransaction(conn),
      savepoint: inner.savepoint?.bind(inner),
      rollbackToSavepoint: inner.rollbackToSavepoint?.bind(inner),
      releaseSavepoint: inner.releaseSavepoint?.bind(inner),
      releaseConnection: (conn) => inner.releaseConnection(conn),
      destroy: () => inner.destroy(),
    }
  }
}

/** True for statements that only read (outside a transaction they need no write lock). */
function isRead(query: CompiledQuery): boolean {
  if (SelectQueryNode.is(query.query)) return true
  return /^\s*(select|pragma)\b/i.test(query.sql)
}

/**
 * Takes the write gate before a write or a `BEGIN`, and gives it back as soon as the connection is
 * outside a transaction again (better-sqlite3 knows: `inTransaction`).
 */
function gatedConnection(
  conn: DatabaseConnection,
  sqlite: SQLite.Database,
  gate: Gate,
): DatabaseConnection {
  let release: (() => void) | undefined
  return {
    async executeQuery(query) {
      if (!release && !isRead(query)) release = await gate.acquire()
      try {
        return await conn.executeQuery(query)
      } finally {
        if (release && !sqlite.inTransaction) {
          release()
          release = undefined
        }
      }
    },
    streamQuery: (query, chunkSize) => conn.streamQuery(query, chunkSize),
  }
}

/** Most prepared statements kept per SQLite connection. */
const MAX_STATEMENTS = 500

/**
 * The connection as Kysely sees it, with each distinct SQL text prepared once: Kysely prepares
 * every query again, and preparing costs more than running the small lookups on the hot paths.
 * Kysely holds its single SQLite connection exclusively while a query runs or streams, so a
 * statement is never used by two queries at once.
 */
function reusingStatements(sqlite: SQLite.Database): SqliteDialectConfig['database'] {
  const statements = new Map<string, SQLite.Statement>()
  return {
    prepare(sql: string) {
      let statement = statements.get(sql)
      if (!statement) {
        statement = sqlite.prepare(sql)
        if (statements.size >= MAX_STATEMENTS) statements.clear()
        statements.set(sql, statement)
      }
      return statement
    },
    close() {
      statements.clear()
      sqlite.close()
    },
  }
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'postgres://…'
  }
}
