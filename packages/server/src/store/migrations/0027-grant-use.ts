import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * What "your agents" shows about each grant (issue 15 §2):
 * - `first_used_at`, `last_used_at`: when the token endpoint first and last issued tokens under
 *   it, written at most once a minute per grant per process (oauth/grant-use.ts), so a busy
 *   agent does not turn every token request into a write; null until first used;
 * - `consent_text`: JSON array of `{ scope, sentence }`, the sentences the person was shown for
 *   the grant's scopes when it was made, so a resource rewording a scope later does not change
 *   what the page says they agreed to. Null for grants made before this migration.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').addColumn('first_used_at', 'bigint').execute()
  await db.schema.alterTable('grants').addColumn('last_used_at', 'bigint').execute()
  await db.schema.alterTable('grants').addColumn('consent_text', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').dropColumn('consent_text').execute()
  await db.schema.alterTable('grants').dropColumn('last_used_at').execute()
  await db.schema.alterTable('grants').dropColumn('first_used_at').execute()
}
