import type { Store } from '../store/db.js'
import type { AuditEventRow } from '../store/schema.js'
import { rowToRecord } from './chain.js'
import type { AuditRecord } from './types.js'

/** How many rows one page of a chain walk reads; big enough to be quick, small enough for memory. */
export const AUDIT_PAGE_SIZE = 500

/** Options for {@link tailAudit}. */
export interface TailOptions {
  /** How many of the newest records to return. */
  limit: number
  /** Only records of this type (e.g. `user.created`). */
  type?: string
}

/** The newest `limit` records (of one type, if given), oldest first as a log is read. */
export async function tailAudit(store: Store, options: TailOptions): Promise<AuditRecord[]> {
  let query = store.db.selectFrom('audit_events').selectAll()
  if (options.type !== undefined) query = query.where('type', '=', options.type)
  const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute()
  return rows.reverse().map(rowToRecord)
}

/**
 * The stored rows in chain order, one page at a time. Keyset paging (`seq > last`) rather than
 * OFFSET: each page is an index range scan, and records appended during the walk are picked up at
 * the end instead of shifting the pages.
 */
export async function* auditRows(
  store: Store,
  options: { afterSeq?: number; pageSize?: number } = {},
): AsyncGenerator<AuditEventRow> {
  const pageSize = options.pageSize ?? AUDIT_PAGE_SIZE
  let after = options.afterSeq ?? 0
  for (;;) {
    const page = await store.db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', after)
      .orderBy('seq', 'asc')
      .limit(pageSize)
      .execute()
    for (const row of page) yield row
    const last = page.at(-1)
    if (page.length < pageSize || last === undefined) return
    after = Number(last.seq)
  }
}

/** Every record in chain order, with its hashes, read a page at a time (for export). */
export async function* exportAudit(
  store: Store,
  options: { afterSeq?: number; pageSize?: number } = {},
): AsyncGenerator<AuditRecord> {
  for await (const row of auditRows(store, options)) yield rowToRecord(row)
}
