import { sql } from 'kysely'
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

/** What the console's audit timeline filters by; every field is optional. */
export interface AuditFilter {
  /** Records naming this id as actor, on-behalf-of, in the delegation chain or as target. */
  subjectIds?: readonly string[]
  /** A second id set that must also be named (the agent, when person and agent are both given). */
  alsoIds?: readonly string[]
  type?: string
  /** ISO times: records at or after `from`, before `to`. */
  from?: string
  to?: string
  /** Only refusals: `*.refused`, `login.failed` and every `deny` decision. */
  refusals?: boolean
}

/** True when a record names `id` as actor, on-behalf-of, in its chain, or as its target. */
export function recordNames(record: AuditRecord, ids: readonly string[]): boolean {
  const named = [
    record.actor.id,
    record.onBehalfOf?.id,
    record.target?.id,
    ...record.delegationChain.map((a) => a.id),
  ]
  return ids.some((id) => named.includes(id))
}

function likeId(id: string): string {
  // The stored columns are JSON text; `"id":"…"` with LIKE's own wildcards escaped.
  const json = JSON.stringify(id).slice(1, -1)
  return `%"id":"${json.replace(/[\\%_]/g, (ch) => `\\${ch}`)}"%`
}

/**
 * Records matching `filter`, newest first, at most `limit`, all older than `beforeSeq` when given
 * (keyset paging, as `auditRows`).
 */
export async function searchAudit(
  store: Store,
  filter: AuditFilter,
  options: { limit: number; beforeSeq?: number },
): Promise<AuditRecord[]> {
  const found: AuditRecord[] = []
  for await (const record of matchingAudit(store, filter, options.beforeSeq)) {
    found.push(record)
    if (found.length >= options.limit) break
  }
  return found
}

/**
 * Every record matching `filter`, newest first, read a page at a time (for the console's export).
 * The id filters narrow in SQL by the JSON text and are then checked exactly on the parsed record.
 */
export async function* matchingAudit(
  store: Store,
  filter: AuditFilter,
  beforeSeq?: number,
): AsyncGenerator<AuditRecord> {
  let before = beforeSeq
  for (;;) {
    let query = store.db.selectFrom('audit_events').selectAll()
    if (before !== undefined) query = query.where('seq', '<', before)
    if (filter.type !== undefined) query = query.where('type', '=', filter.type)
    if (filter.from !== undefined) query = query.where('time', '>=', filter.from)
    if (filter.to !== undefined) query = query.where('time', '<', filter.to)
    if (filter.refusals)
      query = query.where((eb) =>
        eb.or([
          eb('type', 'like', '%.refused'),
          eb('type', '=', 'login.failed'),
          eb('decision', '=', 'deny'),
        ]),
      )
    for (const ids of [filter.subjectIds, filter.alsoIds]) {
      if (ids === undefined) continue
      query = query.where((eb) =>
        eb.or(
          ids.flatMap((id) =>
            (['actor', 'on_behalf_of', 'target', 'delegation_chain'] as const).map((column) =>
              eb(sql`${sql.ref(column)}`, 'like', sql`${likeId(id)} escape '\\'`),
            ),
          ),
        ),
      )
    }
    const page = await query.orderBy('seq', 'desc').limit(AUDIT_PAGE_SIZE).execute()
    for (const row of page) {
      const record = rowToRecord(row)
      if (filter.subjectIds && !recordNames(record, filter.subjectIds)) continue
      if (filter.alsoIds && !recordNames(record, filter.alsoIds)) continue
      yield record
    }
    const last = page.at(-1)
    if (page.length < AUDIT_PAGE_SIZE || last === undefined) return
    before = Number(last.seq)
  }
}

/** How many records of one type the chain holds (e.g. `token.issued`). */
export async function countAuditEvents(store: Store, type: string): Promise<number> {
  const row = await store.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('type', '=', type)
    .executeTakeFirst()
  return Number(row?.n ?? 0)
}
