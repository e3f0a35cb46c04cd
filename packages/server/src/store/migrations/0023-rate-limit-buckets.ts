import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Rate-limit buckets shared by the replicas on one PostgreSQL database (issue 14 §4): one row per
 * limit and key (`token-client:<client_id>`, `sign-in:<address>`), the tokens left when it was
 * last taken from, in the database's clock. On SQLite the limits live in the process and this
 * table stays empty.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rate_limit_buckets')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('tokens', 'double precision', (c) => c.notNull())
    // What the last take got, so one upsert can both take and answer.
    .addColumn('granted', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    // When the bucket is full again at the latest: past it the row means nothing (the sweep).
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('rate_limit_buckets_expires_at')
    .on('rate_limit_buckets')
    .column('expires_at')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('rate_limit_buckets').execute()
}
