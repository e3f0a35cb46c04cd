import { type Kysely, PostgresAdapter, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Drops the UNIQUE constraint on `audit_events.hash`. Every append wrote a random page of that
 * index (hashes are random), about a tenth of the token endpoint's CPU per token and growing with
 * the chain. It guarded nothing the chain does not: each record's `prev_hash` must equal the hash
 * of the record before it and its own hash must match its content, which `deputy audit verify`
 * checks; the only reader of the index was the diagnosis of an already broken link, which now
 * scans. `seq` stays the primary key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_hash_key`.execute(db)
    return
  }
  // SQLite cannot drop a column constraint: rebuild the table with the same columns and rows.
  await db.schema
    .createTable('audit_events_rebuilt')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('time', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('on_behalf_of', 'text')
    .addColumn('delegation_chain', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('target', 'text')
    .addColumn('decision', 'text')
    .addColumn('reason', 'text')
    .addColumn('request_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute()
  await sql`INSERT INTO audit_events_rebuilt (seq, time, type, actor, on_behalf_of, delegation_chain, target, decision, reason, request_id, data, prev_hash, hash) SELECT seq, time, type, actor, on_behalf_of, delegation_chain, target, decision, reason, request_id, data, prev_hash, hash FROM audit_events`.execute(
    db,
  )
  await db.schema.dropTable('audit_events').execute()
  await sql`ALTER TABLE audit_events_rebuilt RENAME TO audit_events`.execute(db)
  await db.schema.createIndex('audit_events_type').on('audit_events').column('type').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`ALTER TABLE audit_events ADD CONSTRAINT audit_events_hash_key UNIQUE (hash)`.execute(
      db,
    )
    return
  }
  await db.schema
    .createIndex('audit_events_hash_key')
    .on('audit_events')
    .column('hash')
    .unique()
    .execute()
}
