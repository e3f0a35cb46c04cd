import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * The vault's refresh lease (vault/refresh.ts): `refresh_lease_until` (epoch ms) on a connection
 * says one process has claimed its refresh and is talking to the provider until then. The claim
 * is a compare-and-swap in a short transaction, the provider call happens outside any
 * transaction (SQLite has one writer: holding BEGIN IMMEDIATE across a slow provider call would
 * stall every write of every process), and the others wait for `token_version` to move. A lease
 * whose holder died runs out and may be claimed again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').addColumn('refresh_lease_until', 'bigint').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').dropColumn('refresh_lease_until').execute()
}
