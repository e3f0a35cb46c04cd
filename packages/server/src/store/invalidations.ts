import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.js'
import type { Signals } from './signals.js'

// What processes cache of rows that grant authority (clients, resources, the active signing key,
// the policy set) must not outlive a change made anywhere by more than a second (issue 14 §1).
// Three layers, so that no single lost message can keep a disabled client working:
//  1. the change bumps its kind's counter in `cache_versions` in the transaction that makes it;
//  2. after commit, an announcement on the `deputy_invalidate` signal drops the entry at once in
//     every process (PostgreSQL LISTEN/NOTIFY; on SQLite, within the process);
//  3. every process reads the counters every `cacheCheckIntervalMs` and drops a whole kind whose
//     counter moved — how SQLite processes sharing a file hear of each other, and on PostgreSQL
//     the bound when a notification is lost (a listener that reconnects also drops everything).
// A check that fails drops everything too: a process that cannot tell is not trusted to cache.

/** The kinds of cached rows a change must reach every process for. */
export type CachedKind = 'clients' | 'resources' | 'signing_keys' | 'policies'

const KINDS: readonly CachedKind[] = ['clients', 'resources', 'signing_keys', 'policies']

/** The signal channel of announcements: `{"kind": …, "key": …}`. */
export const INVALIDATE_CHANNEL = 'deputy_invalidate'

/** Default of `cacheCheckIntervalMs`: how often the counters are read. */
export const CACHE_CHECK_INTERVAL_MS = 250

/** Hears of changes to cached rows, wherever they were made. */
export interface Invalidations {
  /**
   * Calls `drop(key)` when the row `key` of `kind` changed in any process, and `drop()` when any
   * row of it may have (a counter moved, a notification may be lost). Starts the checks.
   */
  subscribe(kind: CachedKind, drop: (key?: string) => void): () => void
  /** Inside the transaction that changes a row of `kind`: bumps the kind's counter. */
  mark(db: Kysely<Database>, kind: CachedKind): Promise<void>
  /** After that transaction commits: drops the entry here and in every other process at once. */
  announce(kind: CachedKind, key?: string): Promise<void>
  close(): void
}

/** Bumps `kind`'s change counter (for writers without an `Invalidations`, e.g. the sweep). */
export async function markChanged(db: Kysely<Database>, kind: CachedKind): Promise<void> {
  await db
    .insertInto('cache_versions')
    .values({ kind, version: 1 })
    .onConflict((oc) =>
      oc.column('kind').doUpdateSet({ version: sql<number>`cache_versions.version + 1` }),
    )
    .execute()
}

/** Announcements and counter checks over `db` and `signals` (one per open store). */
export function createInvalidations(
  db: Kysely<Database>,
  signals: Signals,
  options: { checkIntervalMs?: number } = {},
): Invalidations {
  const interval = options.checkIntervalMs ?? CACHE_CHECK_INTERVAL_MS
  const droppers = new Map<CachedKind, Set<(key?: string) => void>>()
  /** The counters as last read; undefined until the first read succeeds. */
  let seen: Map<string, number> | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  let checking = false
  let closed = false
  let stopSignals: (() => void)[] = []

  function drop(kind: CachedKind, key?: string): void {
    for (const d of droppers.get(kind) ?? []) d(key)
  }
  const dropAll = () => {
    for (const kind of KINDS) drop(kind)
  }

  async function check(): Promise<void> {
    if (checking || closed) return
    checking = true
    try {
      const rows = await db.selectFrom('cache_versions').select(['kind', 'version']).execute()
      const now = new Map(rows.map((r) => [r.kind, Number(r.version)]))
      for (const kind of KINDS) {
        // The first read drops everything: what was cached before it cannot be vouched for.
        if (!seen || seen.get(kind) !== now.get(kind)) drop(kind)
      }
      seen = now
    } catch {
      seen = undefined
      if (!closed) dropAll()
    } finally {
      checking = false
    }
  }

  function start(): void {
    if (timer || closed) return
    const onPayload = (payload: string) => {
      try {
        const { kind, key } = JSON.parse(payload) as { kind: CachedKind; key?: string }
        if (KINDS.includes(kind)) drop(kind, typeof key === 'string' ? key : undefined)
      } catch {
        // Not ours (the channel is only written by Deputy); nothing to drop.
      }
    }
    stopSignals = [signals.subscribe(INVALIDATE_CHANNEL, onPayload), signals.onMissed(dropAll)]
    // What was cached before the LISTEN was in place cannot be vouched for either.
    void signals.ready(INVALIDATE_CHANNEL).then(dropAll, dropAll)
    void check()
    timer = setInterval(() => void check(), interval)
    // A process with nothing else to do must be free to exit.
    timer.unref()
  }

  return {
    subscribe(kind, dropper) {
      const set = droppers.get(kind) ?? new Set()
      droppers.set(kind, set)
      set.add(dropper)
      start()
      return () => set.delete(dropper)
    },
    mark: markChanged,
    async announce(kind, key) {
      drop(kind, key)
      // The change is committed and its counter moved with it: a notification that cannot be
      // sent only makes the other processes hear of it at their next check, never not at all.
      await signals
        .publish(INVALIDATE_CHANNEL, JSON.stringify(key === undefined ? { kind } : { kind, key }))
        .catch(() => {})
    },
    close() {
      closed = true
      if (timer) clearInterval(timer)
      timer = undefined
      for (const stop of stopSignals) stop()
      stopSignals = []
    },
  }
}
