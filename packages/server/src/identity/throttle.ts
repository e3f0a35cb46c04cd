import type { Kysely } from 'kysely'
import type { Database } from '../store/schema.js'

// Sign-in throttling that slows an attacker without locking the real person out (issue 9 §6).
// Failures are counted per (account, client address) pair — a wrong password from one address
// never holds back the right one from another — and per address across accounts, so one address
// cannot spray guesses over many accounts. Past the limit each further attempt from there must
// wait: 1 s, then twice as long after every failure, up to the configured longest wait (OWASP
// ASVS 4.0 V2.2.1: anti-automation against brute force that does not enable lockout attacks).
// Counters live in the database, so the throttle holds across restarts and replicas.

/** What failed sign-ins are counted against (the `login_throttle` row keys). */
export interface ThrottleKeys {
  /** `pair:<email digest>@<address>`: one account from one address. */
  pair: string
  /** `address:<ip>`: one address across accounts; absent when the host cannot tell the address. */
  address?: string
}

export interface ThrottleSettings {
  /** Failures of one pair before attempts from there must wait. */
  maxFailures: number
  /** Failures from one address, across accounts, before attempts from there must wait. */
  maxFailuresPerAddress: number
  /** The longest wait; failures are forgotten this long after the last wait ended. */
  longestWaitSeconds: number
}

/**
 * The throttle's row keys. The account is named by the digest of the typed email, never the
 * email itself: most typed emails that match no account are typos, or passwords typed into the
 * wrong field. Unknown and known accounts are keyed alike, so the throttle does not tell them apart.
 */
export function throttleKeys(emailDigest: string, address: string | undefined): ThrottleKeys {
  return {
    pair: `pair:${emailDigest}@${address ?? 'unknown'}`,
    // Without an address, one shared bucket would let anyone slow everyone down.
    ...(address ? { address: `address:${address}` } : {}),
  }
}

/** How long the `failures`-th failure of a key makes the next attempt wait, in ms. */
export function waitMs(failures: number, max: number, longestWaitSeconds: number): number {
  if (failures < max) return 0
  // 2^30 s is far past any longest wait; the cap keeps the shift in range.
  return Math.min(2 ** Math.min(failures - max, 30), longestWaitSeconds) * 1000
}

/** The outcome of claiming an attempt. */
export type Claim =
  | {
      ok: true
      /** Seconds the next attempt from here must wait if this one fails (0: none). */
      waitSeconds: number
      /** Keys whose wait this attempt starts (for `login.locked-out`, if it fails). */
      started: { key: string; until: number; failures: number }[]
    }
  | {
      ok: false
      retryAfterSeconds: number
      /** Keys whose wait this attempt started before another key refused it. */
      started: { key: string; until: number; failures: number }[]
    }

/**
 * Claims one sign-in attempt before the password is checked, counting it as a failure until
 * `recordSuccess` says otherwise. Refused (nothing counted) while a key's wait lasts. Each key
 * is one atomic upsert that takes the attempt only if the key is not waiting and, when the count
 * reaches the limit, starts the wait in the same statement — so concurrent guesses cannot all
 * slip past the check before any of them is counted (PostgreSQL re-checks the condition on the
 * row it waited for; SQLite runs one statement at a time).
 */
export async function claimAttempt(
  db: Kysely<Database>,
  keys: ThrottleKeys,
  now: number,
  settings: ThrottleSettings,
): Promise<Claim> {
  const started: { key: string; until: number; failures: number }[] = []
  let waitSeconds = 0
  // The address first: an address that must wait then creates no row per account it names.
  const limits: [string, number][] = []
  if (keys.address) limits.push([keys.address, settings.maxFailuresPerAddress])
  limits.push([keys.pair, settings.maxFailures])
  for (const [key, max] of limits) {
    const failures = await claimKey(db, key, now, max, settings.longestWaitSeconds)
    if (failures === null) {
      const row = await db
        .selectFrom('login_throttle')
        .select('locked_until')
        .where('key', '=', key)
        .executeTakeFirst()
      const until = Number(row?.locked_until ?? now)
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)),
        started,
      }
    }
    const wait = waitMs(failures, max, settings.longestWaitSeconds)
    if (wait === 0) continue
    const until = now + wait
    // The claim set the longest wait as a placeholder (so nobody slips in meanwhile); shorten it
    // to this failure's wait unless another attempt has claimed the key since.
    await db
      .updateTable('login_throttle')
      .set({ locked_until: until })
      .where('key', '=', key)
      .where('failures', '=', failures)
      .where('window_started_at', '=', now)
      .execute()
    waitSeconds = Math.max(waitSeconds, wait / 1000)
    if (failures === max) started.push({ key, until, failures })
  }
  return { ok: true, waitSeconds, started }
}

/** Takes one attempt for a key: its new failure count, or null while the key must wait. */
async function claimKey(
  db: Kysely<Database>,
  key: string,
  now: number,
  max: number,
  longestWaitSeconds: number,
): Promise<number | null> {
  const longest = now + longestWaitSeconds * 1000
  const forgetBefore = now - longestWaitSeconds * 1000
  const row = await db
    .insertInto('login_throttle')
    .values({ key, failures: 1, window_started_at: now, locked_until: max <= 1 ? longest : null })
    .onConflict((oc) =>
      oc
        .column('key')
        .doUpdateSet((eb) => {
          // Forgotten: nothing failed since the last wait ended (or the last failure, if none)
          // plus the longest wait. `window_started_at` is the time of the latest attempt.
          const forgotten = eb(
            eb.fn.coalesce('login_throttle.locked_until', 'login_throttle.window_started_at'),
            '<=',
            forgetBefore,
          )
          const failures = eb
            .case()
            .when(forgotten)
            .then(1)
            .else(eb('login_throttle.failures', '+', 1))
            .end()
          return {
            failures,
            window_started_at: now,
            locked_until: eb
              .case()
              .when(eb(failures, '>=', max))
              .then(longest)
              .else(null)
              .end(),
          }
        })
        .where((eb) =>
          eb.or([
            eb('login_throttle.locked_until', 'is', null),
            eb('login_throttle.locked_until', '<=', now),
          ]),
        ),
    )
    .returning('failures')
    .executeTakeFirst()
  return row ? Number(row.failures) : null
}

/**
 * A sign-in succeeded: the pair's failures are forgotten, and the attempt claimed against the
 * address is given back (so the sign-ins of many people behind one address do not add up).
 */
export async function recordSuccess(
  db: Kysely<Database>,
  keys: ThrottleKeys,
  settings: ThrottleSettings,
): Promise<void> {
  await db.deleteFrom('login_throttle').where('key', '=', keys.pair).execute()
  if (!keys.address) return
  await db
    .updateTable('login_throttle')
    .set((eb) => ({
      failures: eb('failures', '-', 1),
      locked_until: eb
        .case()
        .when('failures', '<=', settings.maxFailuresPerAddress)
        .then(null)
        .else(eb.ref('locked_until'))
        .end(),
    }))
    .where('key', '=', keys.address)
    .where('failures', '>', 0)
    .execute()
}
