import { type Kysely, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * The authorization server: resources and their scopes, clients (pre-registered, dynamically
 * registered, or known by a Client ID Metadata Document), remembered consents, grants,
 * authorization requests in flight, single-use codes, rotating refresh tokens, revoked access
 * tokens and spent client-assertion ids.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('resources')
    .addColumn('uri', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    // JSON array of claim names copied from the person into access tokens for this resource.
    .addColumn('claims_template', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('resource_scopes')
    .addColumn('resource_uri', 'text', (c) =>
      c.notNull().references('resources.uri').onDelete('cascade'),
    )
    .addColumn('scope', 'text', (c) => c.notNull())
    // The sentence the consent page shows for this scope.
    .addColumn('description', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('resource_scopes_pk', ['resource_uri', 'scope'])
    .execute()

  await db.schema
    .createTable('clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) =>
      c.notNull().check(sql`kind in ('registered', 'dynamic', 'metadata_document')`),
    )
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active', 'disabled')`))
    // JSON array of exact redirect URIs.
    .addColumn('redirect_uris', 'text', (c) => c.notNull().defaultTo('[]'))
    // JSON array of grant types this client may use.
    .addColumn('grant_types', 'text', (c) => c.notNull())
    .addColumn('token_endpoint_auth_method', 'text', (c) => c.notNull())
    // SHA-256 of the client secret; the secret is shown once.
    .addColumn('secret_hash', 'text')
    // JSON JWK Set for private_key_jwt, or a jwks_uri.
    .addColumn('jwks', 'text')
    .addColumn('jwks_uri', 'text')
    // Scopes the client may ask for with client_credentials (space-separated), or null for none.
    .addColumn('allowed_scopes', 'text')
    .addColumn('application_type', 'text', (c) => c.notNull().defaultTo('web'))
    .addColumn('client_uri', 'text')
    .addColumn('logo_uri', 'text')
    // The client's metadata as registered or fetched (JSON), for display and audit.
    .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
    // Dynamic registrations may expire; metadata documents are refetched after this.
    .addColumn('expires_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('consents')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('clients.client_id').onDelete('cascade'),
    )
    .addColumn('resource', 'text', (c) => c.notNull())
    // Space-separated scopes the person has agreed to for this client and resource.
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('consents_pk', ['user_id', 'client_id', 'resource'])
    .execute()

  // A grant: what one authorization (code flow) gave one client for one person and resource.
  // Refresh tokens and access tokens carry its id; revoking it ends all of them.
  await db.schema
    .createTable('grants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('clients.client_id').onDelete('cascade'),
    )
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('revoked_reason', 'text')
    .execute()
  await db.schema
    .createIndex('grants_user')
    .on('grants')
    .columns(['user_id', 'client_id'])
    .execute()

  // An authorization request between /authorize and the consent decision; its id is the handle
  // the sign-in and consent pages carry.
  await db.schema
    .createTable('authorization_requests')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('clients.client_id').onDelete('cascade'),
    )
    // The validated request parameters (JSON).
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('authorization_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('grant_id', 'text', (c) => c.notNull().references('grants.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text')
    .addColumn('auth_time', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    // Set by the one redemption that wins; a second redemption finds it set.
    .addColumn('consumed_at', 'bigint')
    .execute()

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('grant_id', 'text', (c) => c.notNull().references('grants.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    // Set when this token was exchanged for its successor.
    .addColumn('rotated_at', 'bigint')
    // Hash of the successor, so a retry within the grace period can be recognised.
    .addColumn('replaced_by', 'text')
    .execute()
  await db.schema
    .createIndex('refresh_tokens_grant')
    .on('refresh_tokens')
    .column('grant_id')
    .execute()

  // Access tokens are JWTs and not stored; one revoked before it expires is listed here until then.
  await db.schema
    .createTable('revoked_access_tokens')
    .addColumn('jti', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()

  // private_key_jwt assertion ids seen, so an assertion cannot be replayed (RFC 7523 §3).
  await db.schema
    .createTable('client_assertion_jtis')
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('jti', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('client_assertion_jtis_pk', ['client_id', 'jti'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'client_assertion_jtis',
    'revoked_access_tokens',
    'refresh_tokens',
    'authorization_codes',
    'authorization_requests',
    'grants',
    'consents',
    'clients',
    'resource_scopes',
    'resources',
  ]) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
