import { type CompiledQuery, type Kysely, sql } from 'kysely'
import type { Clock } from '../lib/clock.js'
import { reusedStatement } from '../store/reused-statement.js'
import type { Database } from '../store/schema.js'

/** How stale a grant's last use may be on "your agents": a write at most this often per grant. */
export const GRANT_USE_INTERVAL_MS = 60_000

// Grants remembered per process; past this the oldest is forgotten (it then costs one more
// conditional write, never a wrong time).
const REMEMBERED = 10_000

/**
 * Records that the token endpoint issued tokens under a grant (first and last use, migration
 * 0027) without making every token request a write: each process writes a grant at most once a
 * minute, and the write itself is conditional, so replicas together stay near that too.
 */
export function createGrantUse(deps: { db: Kysely<Database>; clock: Clock }) {
  const written = new Map<string, number>()
  // Compiled once: it runs with every code's redemption (store/reused-statement.ts).
  const markUse = reusedStatement(
    (grantId: string, now: number) =>
      deps.db
        .updateTable('grants')
        .set({ last_used_at: now, first_used_at: sql<number>`coalesce(first_used_at, ${now})` })
        .where('id', '=', grantId)
        .where((eb) =>
          eb.or([
            eb('last_used_at', 'is', null),
            eb('last_used_at', '<=', now - GRANT_USE_INTERVAL_MS),
          ]),
        )
        .compile(),
    (grantId, now) => [now, now, grantId, now - GRANT_USE_INTERVAL_MS],
  )

  /** The conditional UPDATE for a grant's use now, or undefined when this process wrote it lately. */
  function statement(grantId: string): CompiledQuery | undefined {
    const now = deps.clock.now().getTime()
    const last = written.get(grantId)
    if (last !== undefined && now - last < GRANT_USE_INTERVAL_MS) return undefined
    written.delete(grantId)
    written.set(grantId, now)
    if (written.size > REMEMBERED) {
      const oldest = written.keys().next().value
      if (oldest !== undefined) written.delete(oldest)
    }
    return markUse(grantId, now)
  }

  return {
    async record(grantId: string): Promise<void> {
      const query = statement(grantId)
      if (query) await deps.db.executeQuery(query)
    },
    /** The statement `record` would run, for a caller that commits it with other rows. */
    statement,
  }
}
