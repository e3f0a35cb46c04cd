import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * RFC 9449 §5: a public client's refresh tokens are bound to the DPoP key of the request that got
 * them. `dpop_jkt` is that key's JWK SHA-256 thumbprint (RFC 7638), copied to every successor of
 * the family; null for an unbound token. A thumbprint is public, so it is stored as it is.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').addColumn('dpop_jkt', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').dropColumn('dpop_jkt').execute()
}
