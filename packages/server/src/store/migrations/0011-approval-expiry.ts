import type { Kysely } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * The expiry of an undecided approval request, recorded once (`approval.expired`, by the sweep):
 * - `expiry_claimed_at`: a sweeper took the request to record its expiry, so sweepers on other
 *   replicas leave it alone and a late decision no longer counts; a claim that never became a
 *   record (the process died in between) is taken again after a while;
 * - `expiry_recorded_at`: the record is in the audit chain; only from then on may the request
 *   be deleted (after `approvalRetentionDays`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('approval_requests').addColumn('expiry_claimed_at', 'bigint').execute()
  await db.schema
    .alterTable('approval_requests')
    .addColumn('expiry_recorded_at', 'bigint')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('approval_requests').dropColumn('expiry_recorded_at').execute()
  await db.schema.alterTable('approval_requests').dropColumn('expiry_claimed_at').execute()
}
