import { type Kysely, sql } from 'kysely'
import type { Store } from './db.js'
import type { Database } from './schema.js'

/** Names of the database-wide locks; each serialises one kind of read-then-write. */
export const LOCKS = {
  auditChain: 7_362_910_447,
  signingKeys: 7_362_910_448,
  // Writers of the policy set (versions, declared actions, the set version): a write validates
  // against the schema it reads, so a concurrent change of either must wait.
  policySet: 7_362_910_449,
} as const

/**
 * Runs `work` in a transaction that cannot interleave a read-then-write with the same work in
 * another connection or process. SQLite: `BEGIN IMMEDIATE` takes the single writer lock up front,
 * so the transaction cannot fail to upgrade later. PostgreSQL: an ordinary transaction (row locks
 * taken by `work` serialise), plus a transaction-scoped advisory lock when `lock` is given — a
 * number from LOCKS, or a string naming one thing (hashed by PostgreSQL's `hashtext`).
 */
export async function immediateTransaction<T>(
  store: Store,
  work: (db: Kysely<Database>) => Promise<T>,
  lock?: number | string,
): Promise<T> {
  return store.db.connection().execute(async (conn) => {
    await sql.raw(store.dialect === 'sqlite' ? 'BEGIN IMMEDIATE' : 'BEGIN').execute(conn)
    try {
      if (store.dialect === 'postgres' && typeof lock === 'number')
        await sql`SELECT pg_advisory_xact_lock(${lock})`.execute(conn)
      else if (store.dialect === 'postgres' && typeof lock === 'string')
        await sql`SELECT pg_advisory_xact_lock(hashtext(${lock}))`.execute(conn)
      const result = await work(conn)
      await sql.raw('COMMIT').execute(conn)
      return result
    } catch (err) {
      await sql
        .raw('ROLLBACK')
        .execute(conn)
        .catch(() => {})
      throw err
    }
  })
}

/**
 * Runs `work` in a transaction that holds a database-wide write lock, so a read-then-write
 * (read the chain head, append after it) cannot interleave with the same work anywhere else.
 */
export function runExclusive<T>(
  store: Store,
  lock: number,
  work: (db: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return immediateTransaction(store, work, lock)
}
