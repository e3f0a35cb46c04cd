/**
 * A small in-process cache whose entries expire after a fixed time, for data that other
 * processes (replicas, the CLI) may change: a reader here sees such a change at most `ttlMs`
 * late. Writes made through this process call `delete` (or `clear`) so they show at once.
 * Time is the monotonic `performance.now()`, not the injected clock: staleness is about real
 * elapsed time, and a test clock that stands still must not make an entry live forever.
 */
export interface TtlCache<K, V> {
  get(key: K): V | undefined
  /**
   * A token taken before reading the source; `set` with it is ignored if anything was deleted
   * since, so a read that raced a local write cannot put the old value back.
   */
  stamp(): number
  set(key: K, value: V, stamp?: number): void
  delete(key: K): void
  clear(): void
}

/** A TTL cache holding at most `maxEntries` (the oldest insertion goes first when full). */
export function createTtlCache<K, V>(ttlMs: number, maxEntries = 10_000): TtlCache<K, V> {
  const entries = new Map<K, { value: V; until: number }>()
  let invalidations = 0
  return {
    get(key) {
      const entry = entries.get(key)
      if (!entry) return undefined
      if (entry.until <= performance.now()) {
        entries.delete(key)
        return undefined
      }
      return entry.value
    },
    stamp() {
      return invalidations
    },
    set(key, value, stamp) {
      if (ttlMs <= 0 || (stamp !== undefined && stamp !== invalidations)) return
      entries.delete(key)
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next()
        if (!oldest.done) entries.delete(oldest.value)
      }
      entries.set(key, { value, until: performance.now() + ttlMs })
    },
    delete(key) {
      invalidations++
      entries.delete(key)
    },
    clear() {
      invalidations++
      entries.clear()
    },
  }
}
