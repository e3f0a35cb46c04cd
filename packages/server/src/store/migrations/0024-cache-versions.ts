import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * One change counter per kind of row that processes cache (issue 14 §1): every change that ends
 * authority bumps its kind's counter in the same transaction, and every process reads the
 * counters every `cacheCheckIntervalMs`, dropping what it cached of a kind whose counter moved.
 * SQLite processes sharing a file have no other way to hear of each other's changes; on
 * PostgreSQL it backs up LISTEN/NOTIFY when a notification is lost (store/invalidations.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('cache_versions')
    .addColumn('kind', 'text', (c) => c.primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('cache_versions').execute()
}
