import { type Migration, type MigrationProvider, Migrator, sql } from 'kysely'
import { DeputyError } from '../lib/errors.js'
import type { Store } from './db.js'
import * as m0001 from './migrations/0001-foundation.js'
import * as m0002 from './migrations/0002-oauth.js'
import * as m0003 from './migrations/0003-mcp.js'
import * as m0004 from './migrations/0004-policy.js'
import * as m0005 from './migrations/0005-audit-hash.js'
import * as m0006 from './migrations/0006-operator-authority.js'
import * as m0007 from './migrations/0007-policy-actions-by-resource.js'
import * as m0008 from './migrations/0008-approvals.js'
import * as m0011 from './migrations/0011-approval-expiry.js'
import * as m0012 from './migrations/0012-providers.js'
import * as m0015 from './migrations/0015-connection-refresh-lease.js'
import * as m0017 from './migrations/0017-dpop-bound-refresh-tokens.js'
import * as m0018 from './migrations/0018-grant-redirect-uri.js'
import * as m0019 from './migrations/0019-audit-checkpoints.js'
import * as m0020 from './migrations/0020-session-sign-in-method.js'
import * as m0021 from './migrations/0021-delegation-rules.js'
import * as m0022 from './migrations/0022-trusted-issuers.js'
import * as m0023 from './migrations/0023-rate-limit-buckets.js'
import * as m0024 from './migrations/0024-cache-versions.js'
import * as m0025 from './migrations/0025-passkeys.js'
import * as m0026 from './migrations/0026-session-device.js'
import * as m0027 from './migrations/0027-grant-use.js'
import * as m0028 from './migrations/0028-connections-by-provider.js'

/** Every migration, in order (by name). Append new ones; never edit or reorder landed ones. */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-foundation': m0001,
  '0002-oauth': m0002,
  '0003-mcp': m0003,
  '0004-policy': m0004,
  '0005-audit-hash': m0005,
  '0006-operator-authority': m0006,
  '0007-policy-actions-by-resource': m0007,
  '0008-approvals': m0008,
  '0011-approval-expiry': m0011,
  '0012-providers': m0012,
  '0015-connection-refresh-lease': m0015,
  '0017-dpop-bound-refresh-tokens': m0017,
  '0018-grant-redirect-uri': m0018,
  '0019-audit-checkpoints': m0019,
  '0020-session-sign-in-method': m0020,
  '0021-delegation-rules': m0021,
  '0022-trusted-issuers': m0022,
  '0023-rate-limit-buckets': m0023,
  '0024-cache-versions': m0024,
  '0025-passkeys': m0025,
  '0026-session-device': m0026,
  '0027-grant-use': m0027,
  '0028-connections-by-provider': m0028,
}

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS }

export interface MigrationOutcome {
  applied: string[]
}

/**
 * Brings the schema up to date. Kysely's migrator holds a lock (an advisory lock on PostgreSQL)
 * so replicas starting together apply each migration once, and refuses a database whose applied
 * migrations this version does not know.
 */
export async function migrateToLatest(store: Store): Promise<MigrationOutcome> {
  const migrator = new Migrator({ db: store.db, provider })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new DeputyError(
      'ERR_DATABASE',
      `database migration ${failed ? `${failed} ` : ''}failed: ${(error as Error).message}`,
      { cause: error },
    )
  }
  return {
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
  }
}

/**
 * Which migrations this version has that the database has not applied (`deputy migrate` applies
 * them), and which the database has applied that this version does not know (a newer Deputy
 * wrote it), without changing anything.
 */
export async function migrationStatus(
  store: Store,
): Promise<{ pending: string[]; unknown: string[] }> {
  const migrator = new Migrator({ db: store.db, provider })
  const known = await migrator.getMigrations()
  const pending = known.filter((m) => m.executedAt === undefined).map((m) => m.name)
  let applied: string[] = []
  try {
    const rows = await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(store.db)
    applied = rows.rows.map((r) => r.name)
  } catch {
    // No migration table yet: nothing applied.
  }
  return { pending, unknown: applied.filter((name) => !(name in MIGRATIONS)) }
}
