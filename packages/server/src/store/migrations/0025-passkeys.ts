import { type Kysely, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Passkeys (WebAuthn credentials, issue 15 §3).
 * - `passkeys`: one row per registered credential: its id and COSE public key (both base64url),
 *   the signature counter the authenticator last reported, the transports the browser named, the
 *   person it signs in as, the name the person gave it, and when it was created and last used;
 * - `passkey_challenges`: WebAuthn challenges by their SHA-256, never the challenge itself. A
 *   registration's challenge is bound to the session that asked for it (at most one per session);
 *   a sign-in's challenge lives in the browser (a cookie Deputy signs) and is written here only
 *   once an assertion with it has been verified, so it cannot be used twice and nobody can add
 *   rows without a registered passkey. Swept when expired.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('passkeys')
    .addColumn('credential_id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
    // JSON array of AuthenticatorTransport values (`internal`, `usb`, `hybrid` …).
    .addColumn('transports', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .execute()
  await db.schema.createIndex('passkeys_user').on('passkeys').column('user_id').execute()

  await db.schema
    .createTable('passkey_challenges')
    .addColumn('challenge_hash', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('register', 'sign-in')`))
    // Registration: the digest of the session that asked; sign-in: null.
    .addColumn('session_hash', 'text')
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('passkey_challenges_session')
    .on('passkey_challenges')
    .column('session_hash')
    .execute()
  await db.schema
    .createIndex('passkey_challenges_expiry')
    .on('passkey_challenges')
    .column('expires_at')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('passkey_challenges').execute()
  await db.schema.dropTable('passkeys').execute()
}
