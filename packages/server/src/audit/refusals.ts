import type { Clock } from '../lib/clock.js'
import type { AuditEventInput, AuditLog } from './types.js'

/**
 * How refusals of anonymous requests reach the audit chain. Anyone on the internet can send
 * refused requests (a wrong client, a broken metadata URL, an unknown account), and a record
 * each would let them grow the chain — and the database — without bound. So per kind of refusal
 * (event type, reason, actor, target) the first one in a window is written in full, and the rest
 * of the window are counted and written as one summary record when the window closes or Deputy
 * shuts down. A burst of identical refusals costs two records; distinct refusals are still each
 * written, up to `maxKinds` per window, past which they too are only counted (per event type).
 * Only refusals go through here: whatever allows something is always written in full, before it
 * takes effect.
 */
export interface RefusalLog {
  /** Records a refusal: in full if it is the first of its kind in this window, else counted. */
  record(event: AuditEventInput): Promise<void>
  /** Writes the summaries of the window so far and starts a new one (shutdown, tests). */
  flush(): Promise<void>
  /** Flushes and stops the window timer. */
  close(): Promise<void>
}

/** Distinct kinds of refusal written in full per window before the rest are only counted. */
export const MAX_REFUSAL_KINDS = 200

interface Kind {
  event: AuditEventInput
  /** Refusals of this kind in the window that were not written in full. */
  count: number
}

/** The summary of a type's refusals past `maxKinds`, whose kinds were not kept. */
const OVERFLOW_ACTOR = { type: 'system', id: 'deputy' } as const

/** Writes refusals through `audit`, summarising repeats per window (see `RefusalLog`). */
export function createRefusalLog(
  audit: AuditLog,
  clock: Clock,
  options: {
    windowSeconds: number
    maxKinds?: number
    /** Told when a summary could not be written (the refused requests were refused anyway). */
    onError?: (err: unknown) => void
  },
): RefusalLog {
  const maxKinds = options.maxKinds ?? MAX_REFUSAL_KINDS
  let kinds = new Map<string, Kind>()
  let overflow = new Map<string, number>()
  let windowStart: Date | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

  function keyOf(event: AuditEventInput): string {
    const { actor, target } = event
    return JSON.stringify([
      event.type,
      event.reason ?? null,
      event.decision ?? null,
      actor.type,
      actor.id,
      actor.label ?? null,
      target?.type ?? null,
      target?.id ?? null,
    ])
  }

  function summaries(from: Date, until: Date): AuditEventInput[] {
    const window = {
      from: from.toISOString(),
      until: until.toISOString(),
      seconds: options.windowSeconds,
    }
    const out: AuditEventInput[] = []
    for (const { event, count } of kinds.values()) {
      if (count === 0) continue
      out.push({
        type: event.type,
        actor: event.actor,
        onBehalfOf: event.onBehalfOf ?? null,
        target: event.target ?? null,
        decision: event.decision ?? null,
        reason: event.reason ?? null,
        data: { count, window },
      })
    }
    for (const [type, count] of overflow) {
      out.push({
        type,
        actor: OVERFLOW_ACTOR,
        decision: 'deny',
        reason: `more than ${maxKinds} kinds of refusal in one window`,
        data: { count, window, distinct: true },
      })
    }
    return out
  }

  async function flush(): Promise<void> {
    clearTimeout(timer)
    timer = undefined
    const from = windowStart
    if (!from) return
    const pending = summaries(from, clock.now())
    kinds = new Map()
    overflow = new Map()
    windowStart = undefined
    await Promise.all(
      pending.map((event) => audit.append(event).then(() => undefined, options.onError)),
    )
  }

  return {
    async record(event) {
      if (!windowStart) {
        windowStart = clock.now()
        if (!closed) {
          timer = setTimeout(() => void flush(), options.windowSeconds * 1000)
          timer.unref()
        }
      }
      const key = keyOf(event)
      const kind = kinds.get(key)
      if (kind) {
        kind.count++
        return
      }
      if (kinds.size >= maxKinds) {
        overflow.set(event.type, (overflow.get(event.type) ?? 0) + 1)
        return
      }
      const entry = { event, count: 0 }
      kinds.set(key, entry)
      try {
        await audit.append(event)
      } catch (err) {
        // Not written: the next refusal of this kind must try to write itself in full.
        if (kinds.get(key) === entry) kinds.delete(key)
        throw err
      }
    },
    flush,
    async close() {
      closed = true
      await flush()
    },
  }
}
