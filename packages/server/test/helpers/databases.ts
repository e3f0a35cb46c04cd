import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { randomToken } from '../../src/lib/random.js'

/** PostgreSQL server for the PostgreSQL suites; unset means they are skipped (and the run says so). */
export const POSTGRES_URL = process.env.DEPUTY_TEST_POSTGRES_URL

export interface TestDatabase {
  /** What to put in the `database` setting: a SQLite file path or a postgres:// URL. */
  url: string
  dispose(): Promise<void>
}

export interface DialectCase {
  name: 'sqlite' | 'postgres'
  create(): Promise<TestDatabase>
}

/** A fresh SQLite file in its own temporary folder. */
export async function createSqliteDatabase(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'deputy-test-'))
  return {
    url: join(dir, 'deputy.db'),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** A fresh, empty PostgreSQL database on the test server, dropped afterwards. */
export async function createPostgresDatabase(): Promise<TestDatabase> {
  if (!POSTGRES_URL) throw new Error('DEPUTY_TEST_POSTGRES_URL is not set')
  const name = `deputy_t_${randomToken(9)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}`
  const admin = new pg.Client({ connectionString: POSTGRES_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async dispose() {
      const client = new pg.Client({ connectionString: POSTGRES_URL })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await client.end()
    },
  }
}

/** The dialects a storage suite runs against: always SQLite, PostgreSQL when configured. */
export const DIALECTS: DialectCase[] = [
  { name: 'sqlite', create: createSqliteDatabase },
  { name: 'postgres', create: createPostgresDatabase },
]

/** True when a dialect's suite must be skipped on this machine. */
export function skipDialect(name: DialectCase['name']): boolean {
  return name === 'postgres' && !POSTGRES_URL
}
