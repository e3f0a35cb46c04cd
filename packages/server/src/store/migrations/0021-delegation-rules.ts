import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * `delegation_rules` (issue 13 §1, docs/delegation.md): the operator's word on which client may
 * act for a person (RFC 8693 token exchange, delegation) toward which resource, and whether it may
 * impersonate there (a token without `act`). One row per client and resource; a client with no
 * rows may act only where a subject token's `may_act` names it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('delegation_rules')
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('clients.client_id').onDelete('cascade'),
    )
    .addColumn('resource', 'text', (c) =>
      c.notNull().references('resources.uri').onDelete('cascade'),
    )
    // 1: the client's exchanged tokens carry no `act` (impersonation), 0: delegation.
    .addColumn('impersonate', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('delegation_rules_pk', ['client_id', 'resource'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('delegation_rules').execute()
}
