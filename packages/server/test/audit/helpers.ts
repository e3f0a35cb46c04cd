import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createAuditLog } from '../../src/audit/chain.js'
import type { AuditEventInput, AuditRecord } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'

/** The real CLI entry point; it loads packages/server/dist, so build before running these tests. */
export const CLI = fileURLToPath(new URL('../../bin/deputy.js', import.meta.url))
/** The child process that appends through the built code. */
export const APPENDER = fileURLToPath(new URL('./fixtures/append.mjs', import.meta.url))

const MASTER_KEY = generateMasterKey()

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `deputy <args> --db <database>` in a child process, with `env` added to its environment. */
export function runCli(
  database: string,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = { DEPUTY_MASTER_KEY: MASTER_KEY },
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv }
  delete env.DEPUTY_DATABASE_URL
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--db', database], { env }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number) : 0
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr })
    })
  })
}

/** Opens a database with the schema in place. */
export async function openMigrated(database: string): Promise<Store> {
  const store = openStore(database)
  await migrateToLatest(store)
  return store
}

/** The `i`-th of a varied set of events: several types, actors, and data worth canonicalising. */
export function sampleEvent(i: number): AuditEventInput {
  const types = ['user.created', 'session.started', 'login.failed', 'user.roles-changed']
  return {
    type: types[i % types.length] as string,
    actor: i % 3 === 0 ? { type: 'system', id: 'cli' } : { type: 'user', id: `u${i % 5}` },
    onBehalfOf: i % 4 === 1 ? { type: 'user', id: 'alice', label: 'alice@example.com' } : null,
    delegationChain: i % 4 === 1 ? [{ type: 'agent', id: 'agent-1' }] : [],
    target: { type: 'user', id: `u${i}` },
    decision: i % 2 === 0 ? 'allow' : 'deny',
    reason: i % 2 === 0 ? null : 'wrong password',
    requestId: `req-${i}`,
    data: { zeta: i, alpha: { nested: [1, 'ü', null], b: true }, note: 'café ✓' },
  }
}

/** Writes `count` sample events to a fresh chain and closes the database. */
export async function seedChain(database: string, count: number): Promise<AuditRecord[]> {
  const store = await openMigrated(database)
  try {
    const audit = createAuditLog(store, { now: () => new Date() })
    const records: AuditRecord[] = []
    for (let i = 0; i < count; i++) records.push(await audit.append(sampleEvent(i)))
    return records
  } finally {
    await store.close()
  }
}
