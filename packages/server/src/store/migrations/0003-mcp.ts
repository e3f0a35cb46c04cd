import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * MCP servers protected by Deputy: the per-user key-value state (scoped by resource and `sub`, so a
 * ban or a preference follows the person, not an MCP session) and the mcp.shop demo's orders.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mcp_user_state')
    // The resource indicator of the MCP server the state belongs to.
    .addColumn('resource', 'text', (c) => c.notNull())
    // The person (`sub` of the verified access token).
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    // JSON.
    .addColumn('value', 'text', (c) => c.notNull())
    // Incremented by every write, so a lost update would show as a failed compare.
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('mcp_user_state_pk', ['resource', 'sub', 'key'])
    .execute()

  await db.schema
    .createTable('mcp_shop_orders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('sub', 'text', (c) => c.notNull())
    // The agent that placed the order, for the person's own records.
    .addColumn('client_id', 'text')
    .addColumn('email', 'text')
    .addColumn('company', 'text', (c) => c.notNull())
    .addColumn('mailing_address', 'text', (c) => c.notNull())
    .addColumn('tshirt_size', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('mcp_shop_orders_owner')
    .on('mcp_shop_orders')
    .columns(['resource', 'sub', 'created_at'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('mcp_shop_orders').ifExists().execute()
  await db.schema.dropTable('mcp_user_state').ifExists().execute()
}
