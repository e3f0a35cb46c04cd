import type { Expression, ExpressionBuilder, Kysely, SqlBool } from 'kysely'
import type { Database } from '../store/schema.js'
import { sealedKid } from './envelope.js'
import type { MasterKeyRing } from './key-ring.js'
import { SEALED_COLUMNS, type SealedColumn } from './sealed-columns.js'
import type { Sealer } from './types.js'

/** A record that could not be re-sealed, named without its value. */
export interface ResealFailure {
  table: string
  column: string
  /** The row's primary key. */
  key: Record<string, string>
  reason: string
}

/** What one re-seal did, in counts. */
export interface ResealCounts {
  /** Records sealed again with the current key. */
  resealed: number
  /** Records already under the current key (a concurrent write, or a resumed rotation). */
  alreadyCurrent: number
  /** Records that changed between the read and the write; the next pass takes them again. */
  raced: number
  failed: ResealFailure[]
  /** Records re-sealed per `table.column`. */
  byColumn: Record<string, number>
}

/** Deps of the re-seal: the database, a sealer over the ring, and the ring itself. */
export interface ResealDeps {
  db: Kysely<Database>
  sealer: Sealer
  masterKeys: MasterKeyRing
}

export interface ResealOptions {
  /** Rows read per query (default 100). */
  batchSize?: number
  /** Called after each batch, with the counts so far (progress; tests act mid-rotation). */
  onBatch?: (counts: ResealCounts) => Promise<void> | void
  /**
   * Called after a record was re-sealed in memory, just before its compare-and-swap write (tests
   * put a concurrent writer here).
   */
  beforeWrite?: (entry: SealedColumn, key: Record<string, string>) => Promise<void> | void
  /** Only these columns (default: the whole registry). */
  columns?: readonly SealedColumn[]
}

type Row = Record<string, unknown>
// The registry names tables and columns at run time; the queries are checked by the tests.
// biome-ignore lint/suspicious/noExplicitAny: dynamic table and column names
type AnyDb = Kysely<any>

/**
 * One pass over every registered sealed column: each value not under the current master key is
 * opened (with whichever known key sealed it) and sealed again with the current key. Each row is
 * its own short statement, a compare-and-swap on the old sealed value, so a concurrent write (a
 * refreshed token, a new webhook secret) is never overwritten; a record that does not open is
 * reported and the pass goes on.
 */
export async function resealOnce(
  deps: ResealDeps,
  options: ResealOptions = {},
): Promise<ResealCounts> {
  const counts: ResealCounts = {
    resealed: 0,
    alreadyCurrent: 0,
    raced: 0,
    failed: [],
    byColumn: {},
  }
  const batchSize = options.batchSize ?? 100
  const db = deps.db as unknown as AnyDb
  for (const entry of options.columns ?? SEALED_COLUMNS) {
    let after: Row | undefined
    for (;;) {
      let query = db
        .selectFrom(entry.table)
        .select([...entry.keys, ...(entry.reads ?? []), entry.column])
        .where(entry.column, 'is not', null)
      for (const [column, value] of Object.entries(entry.only ?? {})) {
        query = query.where(column, '=', value)
      }
      if (after) {
        const last = after
        query = query.where((eb) => keyAfter(eb, entry.keys, last))
      }
      for (const k of entry.keys) query = query.orderBy(k, 'asc')
      const rows = (await query.limit(batchSize).execute()) as Row[]
      for (const row of rows) await resealRow(deps, db, entry, row, counts, options)
      await options.onBatch?.(counts)
      if (rows.length < batchSize) break
      after = rows[rows.length - 1]
    }
  }
  return counts
}

async function resealRow(
  deps: ResealDeps,
  db: AnyDb,
  entry: SealedColumn,
  row: Row,
  counts: ResealCounts,
  options: ResealOptions,
): Promise<void> {
  const stored = String(row[entry.column])
  const key = Object.fromEntries(entry.keys.map((k) => [k, String(row[k])]))
  const fail = (reason: string): void => {
    counts.failed.push({ table: entry.table, column: entry.jsonField ?? entry.column, key, reason })
  }
  let sealed: string
  let object: Record<string, unknown> | undefined
  if (entry.jsonField) {
    try {
      object = JSON.parse(stored) as Record<string, unknown>
    } catch {
      return fail('the column is not JSON')
    }
    const field = object?.[entry.jsonField]
    if (field === undefined || field === null) return
    sealed = String(field)
  } else {
    sealed = stored
  }
  const current = deps.masterKeys.current()
  if (sealedKid(sealed) === current.kid) {
    counts.alreadyCurrent++
    return
  }
  let replacement: string
  try {
    const aad = entry.associatedData(row)
    const resealed = deps.sealer.seal(deps.sealer.open(sealed, aad), aad)
    replacement = object
      ? JSON.stringify({ ...object, [entry.jsonField as string]: resealed })
      : resealed
  } catch (err) {
    return fail((err as Error).message)
  }
  await options.beforeWrite?.(entry, key)
  let update = db
    .updateTable(entry.table)
    .set({ [entry.column]: replacement })
    .where(entry.column, '=', stored)
  for (const k of entry.keys) update = update.where(k, '=', row[k])
  const result = await update.executeTakeFirst()
  if (Number(result.numUpdatedRows) === 1) {
    counts.resealed++
    const name = `${entry.table}.${entry.jsonField ?? entry.column}`
    counts.byColumn[name] = (counts.byColumn[name] ?? 0) + 1
  } else {
    counts.raced++
  }
}

/** `(k1, k2, …) > (v1, v2, …)` spelled out, which both dialects run the same way. */
// biome-ignore lint/suspicious/noExplicitAny: dynamic table and column names
function keyAfter(e: ExpressionBuilder<any, any>, keys: readonly string[], last: Row) {
  const terms: Expression<SqlBool>[] = keys.map((k, i) =>
    e.and([...keys.slice(0, i).map((prior) => e(prior, '=', last[prior])), e(k, '>', last[k])]),
  )
  return e.or(terms)
}
