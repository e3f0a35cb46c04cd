import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * How a session was signed in: `password`, or `provider:<name>` for a sign-in through an
 * upstream provider (issue 12). A high-risk approval asks for the password entered within
 * minutes; a provider sign-in, which an upstream session still open in the browser completes
 * without the person typing anything, does not count as that. Every earlier session was a
 * password sign-in.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('sessions')
    .addColumn('signed_in_with', 'text', (c) => c.notNull().defaultTo('password'))
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('signed_in_with').execute()
}
