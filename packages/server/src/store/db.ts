import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { isPostgresUrl } from '../config/load.js'
import { DeputyError } from '../lib/errors.js'
import type { Database } from './schema.js'

export type Dialect = 'sqlite' | 'postgres'

/** An open database: the typed query builder, which dialect it speaks, and how to close it. */
export interface Store {
  db: Kysely<Database>
  dialect: Dialect
  /** Where it lives, with any password removed, for messages. */
  location: string
  close(): Promise<void>
}

const PG_INT8 = 20

/**
 * Opens the database named by `database`: a `postgres://` URL, or a SQLite file (created with its
 * folder if missing). SQLite runs in WAL mode with a busy timeout so several processes (the server
 * and a CLI command) can share the file, and with `synchronous=FULL` so an acknowledged write —
 * an audit event above all — survives a crash of the machine, not only of the process.
 */
export function openStore(database: string): Store {
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
    return { db, dialect: 'postgres', location: redactUrl(database), close: () => db.destroy() }
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
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  return { db, dialect: 'sqlite', location: database, close: () => db.destroy() }
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
