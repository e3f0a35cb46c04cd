import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * The redirect URI a grant was authorized for: when a Client ID Metadata Document fetched again
 * no longer lists it, the grants made through it end (issue 13 §5). Null for grants without one
 * (CIBA, and grants made before this migration, which such a change then leaves alone).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').addColumn('redirect_uri', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').dropColumn('redirect_uri').execute()
}
