import { type Kysely, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Asynchronous approval (OpenID CIBA Core 1.0 with RFC 9396 authorization details):
 * - `approval_requests`: one backchannel authentication request, from the client's ask to the
 *   person's decision and the single token it may yield;
 * - `authorization_detail_types`: the RAR types each resource accepts, with the JSON Schema they
 *   are checked against and the sentence a person reads;
 * - the CIBA client metadata of `clients` (RFC 7591 names): how tokens are delivered and where
 *   ping notifications go;
 * - `approval_notifications`: what was sent to the person, through which channel, and whether it
 *   arrived (the delivery log of email and webhooks).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('clients')
    .addColumn('backchannel_token_delivery_mode', 'text')
    .execute()
  await db.schema
    .alterTable('clients')
    .addColumn('backchannel_client_notification_endpoint', 'text')
    .execute()

  // RFC 9396 at /authorize: what a grant authorized in detail (JSON array), carried into its tokens.
  await db.schema
    .alterTable('grants')
    .addColumn('authorization_details', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute()

  await db.schema
    .createTable('approval_requests')
    // Random, for the person's page (/approvals/<id>); the auth_req_id itself is only hashed.
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('auth_req_hash', 'text', (c) => c.notNull().unique())
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('clients.client_id').onDelete('cascade'),
    )
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    // JSON array (RFC 9396 §2), as validated; '[]' when none.
    .addColumn('authorization_details', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('binding_message', 'text')
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('pending', 'approved', 'denied')`),
    )
    .addColumn('delivery_mode', 'text', (c) =>
      c.notNull().check(sql`delivery_mode in ('poll', 'ping')`),
    )
    // Ping mode only, sealed: the client_notification_token Deputy sends back as a Bearer token,
    // and the auth_req_id the ping names (CIBA §10.2).
    .addColumn('notification_token_sealed', 'text')
    .addColumn('auth_req_id_sealed', 'text')
    // Seconds between polls; grows by 5 on every slow_down (CIBA §11).
    .addColumn('interval_seconds', 'integer', (c) => c.notNull())
    // The earliest time the next poll is in time (epoch ms).
    .addColumn('next_poll_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('decided_at', 'bigint')
    // JSON actor: the person, or an operator.
    .addColumn('decided_by', 'text')
    // When the decision's audit record was written: an approval counts only from then on, so no
    // token is ever issued on a decision the chain does not hold.
    .addColumn('decision_recorded_at', 'bigint')
    // SHA-256 of exactly what the decision page showed (the decision binds to it).
    .addColumn('shown_digest', 'text')
    // When the approval was exchanged for its token: it is used once.
    .addColumn('consumed_at', 'bigint')
    .execute()
  await db.schema
    .createIndex('approval_requests_person')
    .on('approval_requests')
    .columns(['user_id', 'status', 'expires_at'])
    .execute()
  await db.schema
    .createIndex('approval_requests_client')
    .on('approval_requests')
    .columns(['client_id', 'user_id', 'status'])
    .execute()
  await db.schema
    .createIndex('approval_requests_expires_at')
    .on('approval_requests')
    .column('expires_at')
    .execute()

  await db.schema
    .createTable('authorization_detail_types')
    .addColumn('resource', 'text', (c) =>
      c.notNull().references('resources.uri').onDelete('cascade'),
    )
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    // JSON Schema (draft 2020-12) every detail of this type must satisfy.
    .addColumn('schema', 'text', (c) => c.notNull())
    // The sentence a person reads, with {field.path} placeholders.
    .addColumn('template', 'text', (c) => c.notNull())
    // 1: approving needs a fresh sign-in.
    .addColumn('high_risk', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('authorization_detail_types_pk', ['resource', 'type'])
    .execute()

  await db.schema
    .createTable('approval_notifications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('approval_id', 'text', (c) =>
      c.notNull().references('approval_requests.id').onDelete('cascade'),
    )
    .addColumn('channel', 'text', (c) => c.notNull())
    // Where it went, without secrets (an email address, a webhook host, the client's endpoint).
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('pending', 'delivered', 'failed')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('approval_notifications_approval')
    .on('approval_notifications')
    .column('approval_id')
    .execute()

  // A person's chosen notification channels beyond the inbox (email, webhook, web push), each
  // with its settings (JSON, secrets sealed).
  await db.schema
    .createTable('notification_preferences')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('notification_preferences_pk', ['user_id', 'channel'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('notification_preferences').execute()
  await db.schema.dropTable('approval_notifications').execute()
  await db.schema.dropTable('authorization_detail_types').execute()
  await db.schema.dropTable('approval_requests').execute()
  await db.schema.alterTable('grants').dropColumn('authorization_details').execute()
  await db.schema
    .alterTable('clients')
    .dropColumn('backchannel_client_notification_endpoint')
    .execute()
  await db.schema.alterTable('clients').dropColumn('backchannel_token_delivery_mode').execute()
}
