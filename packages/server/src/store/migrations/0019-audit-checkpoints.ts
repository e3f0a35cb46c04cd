import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Signed checkpoints of the audit chain's head (issue 14 §4): a chain cannot show that records
 * were cut off its end, a checkpoint can — it says "record `seq` existed with hash `hash`", signed
 * with one of Deputy's signing keys, so `deputy audit verify` can tell a truncated tail.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('hash', 'text', (c) => c.notNull())
    // The compact JWS (typ deputy-audit-checkpoint+jwt) an operator may also keep elsewhere.
    .addColumn('jws', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_checkpoints').execute()
}
