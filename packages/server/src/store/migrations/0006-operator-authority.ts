import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Authority that only an operator gives, and bookkeeping for single use and sweeping:
 * - `clients.allowed_resources`: the resources a pre-registered client may get machine tokens for
 *   (JSON array; null means any resource offering its allowed scopes, as before this migration);
 * - `client_metadata_hosts`: the operator's allow-list of hosts whose Client ID Metadata Document
 *   clients may use grants without a person (client credentials), per resource, with the scopes
 *   granted there. A document alone never gives a client that;
 * - `authorization_codes.redeemed_at`: when the redemption that won finished issuing, so a replay
 *   racing it is told apart from one after it (only the latter revokes what was issued);
 * - indexes on the expiry columns the sweeper deletes by.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('clients').addColumn('allowed_resources', 'text').execute()

  await db.schema
    .createTable('client_metadata_hosts')
    // Lower-case host name, with the port when it is not the default one.
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) =>
      c.notNull().references('resources.uri').onDelete('cascade'),
    )
    // Space-separated scopes granted for that resource; never empty.
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('client_metadata_hosts_pk', ['host', 'resource'])
    .execute()

  await db.schema.alterTable('authorization_codes').addColumn('redeemed_at', 'bigint').execute()

  for (const table of [
    'authorization_codes',
    'refresh_tokens',
    'revoked_access_tokens',
    'authorization_requests',
    'sessions',
    'client_assertion_jtis',
  ]) {
    await db.schema.createIndex(`${table}_expires_at`).on(table).column('expires_at').execute()
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'authorization_codes',
    'refresh_tokens',
    'revoked_access_tokens',
    'authorization_requests',
    'sessions',
    'client_assertion_jtis',
  ]) {
    await db.schema.dropIndex(`${table}_expires_at`).execute()
  }
  await db.schema.alterTable('authorization_codes').dropColumn('redeemed_at').execute()
  await db.schema.dropTable('client_metadata_hosts').execute()
  await db.schema.alterTable('clients').dropColumn('allowed_resources').execute()
}
