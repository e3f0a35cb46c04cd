import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Which browser a session was signed in from, as the account page shows it ("Firefox on
 * Linux", issue 15 §2): only that summary, made from the User-Agent header at sign-in, never the
 * header itself (it identifies a browser far more closely than the person needs to recognise
 * it). Null for sessions started before this migration or without the header.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('device', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('device').execute()
}
