import { type Kysely, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Upstream providers (issue 12): sign-in through GitHub, Google, Microsoft, Slack or any OpenID
 * provider, and connected accounts (the token vault).
 * - `providers`: the operator's registry, one row per configured provider; the client secret is
 *   sealed, every endpoint is stored so a test or an enterprise can point it at another host;
 * - `provider_identities`: which person an upstream account (provider + subject) signs in as;
 * - `provider_flows`: a redirect to a provider in progress (sign-in or connect), found by the
 *   digest of its `state`; the PKCE verifier and nonce are sealed; swept when expired;
 * - `connections`: a person's connected account for their agents: sealed access and refresh
 *   tokens (associated data binds them to connection, person and provider), when the access
 *   token expires, and the refresh discipline's state (failures, back-off, needs_reconnect).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('providers')
    // The operator's name for it (`github`, `corp-sso`): in URLs (/connect/<name>) and the exchange.
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) =>
      c.notNull().check(sql`type in ('github', 'google', 'microsoft', 'slack', 'oidc', 'oauth2')`),
    )
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('client_secret_sealed', 'text')
    // OpenID Connect issuer (discovery, `iss` check); null for plain OAuth 2.0 types.
    .addColumn('issuer', 'text')
    // JSON object of endpoints (authorization_endpoint, token_endpoint, userinfo_endpoint,
    // revocation_endpoint, jwks_uri, user_api, emails_api …): the catalogue's defaults or the
    // operator's overrides, resolved once at add time (discovery for OpenID types).
    .addColumn('endpoints', 'text', (c) => c.notNull())
    // JSON array: 'sign-in', 'connect'.
    .addColumn('uses', 'text', (c) => c.notNull())
    // JSON array of scopes asked for at sign-in / as a connection's default.
    .addColumn('scopes', 'text', (c) => c.notNull())
    // JSON array of roles a person created just in time by a sign-in gets.
    .addColumn('default_roles', 'text', (c) => c.notNull().defaultTo('[]'))
    // JSON array of confidential client ids allowed to exchange for this provider's tokens.
    .addColumn('allowed_clients', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active', 'disabled')`))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('provider_identities')
    .addColumn('provider', 'text', (c) =>
      c.notNull().references('providers.name').onDelete('cascade'),
    )
    // The provider's stable subject (OIDC `sub`, GitHub's numeric id), never the login or email.
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('email', 'text')
    // JSON object of the claims mapped from the provider at the last sign-in (`github_login` …).
    .addColumn('claims', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_sign_in_at', 'bigint')
    .addPrimaryKeyConstraint('provider_identities_pk', ['provider', 'subject'])
    .execute()
  await db.schema
    .createIndex('provider_identities_user')
    .on('provider_identities')
    .column('user_id')
    .execute()

  await db.schema
    .createTable('provider_flows')
    // SHA-256 of the `state` sent to the provider: the state itself is only in the browser.
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('sign-in', 'connect')`))
    .addColumn('provider', 'text', (c) =>
      c.notNull().references('providers.name').onDelete('cascade'),
    )
    // Sealed JSON: the PKCE code_verifier and the nonce.
    .addColumn('secrets_sealed', 'text', (c) => c.notNull())
    // Connect: the person connecting (signed in); sign-in: null.
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    // Connect links handed out by an agent or MCP server: the client whose URIs `return_to` matched.
    .addColumn('client_id', 'text')
    .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('return_to', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('provider_flows_expiry')
    .on('provider_flows')
    .column('expires_at')
    .execute()

  await db.schema
    .createTable('connections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('provider', 'text', (c) =>
      c.notNull().references('providers.name').onDelete('cascade'),
    )
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('active', 'needs_reconnect')`),
    )
    // The upstream account (subject and a label to show: login or email), when known.
    .addColumn('account_subject', 'text')
    .addColumn('account_label', 'text')
    // JSON array of the scopes the provider granted.
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('access_token_sealed', 'text', (c) => c.notNull())
    .addColumn('access_token_expires_at', 'bigint')
    .addColumn('refresh_token_sealed', 'text')
    // Bumped on every token write: a refresher that waited for the row lock re-reads it and
    // skips the refresh when another process already did it.
    .addColumn('token_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('refresh_failures', 'integer', (c) => c.notNull().defaultTo(0))
    // After a transient failure: no refresh before this time (epoch ms).
    .addColumn('refresh_not_before', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('last_used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('connections_person_provider')
    .on('connections')
    .columns(['user_id', 'provider'])
    .unique()
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('connections').execute()
  await db.schema.dropTable('provider_flows').execute()
  await db.schema.dropTable('provider_identities').execute()
  await db.schema.dropTable('providers').execute()
}
