import type { Kysely } from 'kysely'
import type { Database } from '../store/schema.js'

/** What failed sign-ins are counted against: the account asked for, and the client's address. */
export interface ThrottleKeys {
  account: string
  /** Absent when the address is unknown: one shared bucket would let anyone lock out everyone. */
  address?: string
}

export interface ThrottleSettings {
  maxFailures: number
  lockoutSeconds: number
}

/** A lockout that was just switched on by a failure, for the `login.locked-out` event. */
export interface NewLockout {
  key: string
  until: number
}

/** The throttle's row keys: `account:<email>` and `address:<ip>`, as the table documents. */
export function throttleKeys(email: string, address: string | undefined): ThrottleKeys {
  return {
    account: `account:${email.trim().toLowerCase().slice(0, 320)}`,
    ...(address ? { address: `address:${address}` } : {}),
  }
}

function keyList(keys: ThrottleKeys): string[] {
  return keys.address ? [keys.account, keys.address] : [keys.account]
}

/**
 * The latest `locked_until` (epoch ms) among the keys that is still in the future, or null.
 * Counters live in the database, not in memory, so a lockout survives a restart and holds across
 * replicas.
 */
export async function lockedUntil(
  db: Kysely<Database>,
  keys: ThrottleKeys,
  now: number,
): Promise<number | null> {
  const rows = await db
    .selectFrom('login_throttle')
    .select('locked_until')
    .where('key', 'in', keyList(keys))
    .where('locked_until', '>', now)
    .execute()
  const until = rows.map((r) => Number(r.locked_until))
  return until.length > 0 ? Math.max(...until) : null
}

/**
 * Counts one failed sign-in against each key. A counter whose window has passed starts again at
 * one. Reaching `maxFailures` within the window locks the key for `lockoutSeconds`; the locks this
 * call switched on are returned (each lock is reported once, even with concurrent failures).
 */
export async function recordFailure(
  db: Kysely<Database>,
  keys: ThrottleKeys,
  now: number,
  settings: ThrottleSettings,
): Promise<NewLockout[]> {
  const windowStart = now - settings.lockoutSeconds * 1000
  const locked: NewLockout[] = []
  for (const key of keyList(keys)) {
    // One upsert, so two replicas counting the same key at once do not lose a failure.
    const row = await db
      .insertInto('login_throttle')
      .values({ key, failures: 1, window_started_at: now, locked_until: null })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet((eb) => ({
          failures: eb
            .case()
            .when('login_throttle.window_started_at', '<=', windowStart)
            .then(1)
            .else(eb('login_throttle.failures', '+', 1))
            .end(),
          window_started_at: eb
            .case()
            .when('login_throttle.window_started_at', '<=', windowStart)
            .then(now)
            .else(eb.ref('login_throttle.window_started_at'))
            .end(),
        })),
      )
      .returning('failures')
      .executeTakeFirstOrThrow()
    if (Number(row.failures) < settings.maxFailures) continue
    const until = now + settings.lockoutSeconds * 1000
    // Only the request that finds the key unlocked switches the lock on and reports it.
    const switched = await db
      .updateTable('login_throttle')
      .set({ locked_until: until })
      .where('key', '=', key)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
      .returning('key')
      .executeTakeFirst()
    if (switched) locked.push({ key, until })
  }
  return locked
}

/** Forgets the failures counted against one key (an account that has just signed in). */
export async function clearFailures(db: Kysely<Database>, key: string): Promise<void> {
  await db.deleteFrom('login_throttle').where('key', '=', key).execute()
}
