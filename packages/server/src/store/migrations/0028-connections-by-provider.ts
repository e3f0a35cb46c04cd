import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * The console lists a provider's connected accounts (vault `listByProvider`), and deleting a
 * provider cascades to its connections: both look connections up by provider alone, which the
 * unique (user_id, provider) index of 0012 cannot serve, so each was a scan of every connection.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('connections_by_provider')
    .on('connections')
    .columns(['provider'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('connections_by_provider').execute()
}
