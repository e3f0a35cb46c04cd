import type { Actor } from '../audit/types.js'
import type { DeputyDeps } from '../deputy.js'
import { verifyPassword } from './passwords.js'
import { endSession, type StartedSession, startSession } from './sessions.js'
import { clearFailures, lockedUntil, recordFailure, throttleKeys } from './throttle.js'
import type { User } from './users.js'

/** One sign-in attempt, as the login form delivers it. */
export interface LoginAttempt {
  email: string
  password: string
  /** The client's network address, or undefined when the host cannot tell. */
  address: string | undefined
  /** The session cookie the browser already had, if any; it is ended, never reused. */
  previousSessionId: string | undefined
  requestId: string | null
}

/** Why a sign-in failed. Recorded in the audit chain only; the person sees one generic message. */
export type LoginFailureReason = 'unknown-account' | 'wrong-password' | 'disabled' | 'locked'

export type LoginResult =
  | { ok: true; user: User; session: StartedSession }
  | { ok: false; locked: false }
  | { ok: false; locked: true; retryAfterSeconds: number }

/**
 * Checks an email and password and, when they match an active account that is not locked out,
 * starts a fresh session. Every failure is counted against the account and the address; the
 * session the browser came with is ended so a planted session id cannot survive sign-in
 * (session fixation, OWASP ASVS V3.2.1).
 */
export async function signIn(deps: DeputyDeps, attempt: LoginAttempt): Promise<LoginResult> {
  const { db, clock, config, audit } = deps
  const now = clock.now().getTime()
  const keys = throttleKeys(attempt.email, attempt.address)
  const email = attempt.email.trim().toLowerCase().slice(0, 320)
  const user = await deps.users.findByEmail(attempt.email)
  const actor: Actor = user
    ? { type: 'user', id: user.id, label: user.email }
    : { type: 'user', id: 'unknown', label: email }
  const event = { actor, requestId: attempt.requestId }
  const where = { email, address: attempt.address ?? 'unknown' }

  const locked = await lockedUntil(db, keys, now)
  if (locked !== null) {
    await audit.append({ ...event, type: 'login.failed', reason: 'locked', data: where })
    return { ok: false, locked: true, retryAfterSeconds: Math.ceil((locked - now) / 1000) }
  }

  // Always verify, even for an unknown or disabled account, so timing does not tell them apart.
  const passwordOk = await verifyPassword(
    user ? await deps.users.passwordHashOf(user.id) : null,
    attempt.password,
  )
  const reason: LoginFailureReason | null = !user
    ? 'unknown-account'
    : !passwordOk
      ? 'wrong-password'
      : user.status !== 'active'
        ? 'disabled'
        : null

  if (reason !== null || !user) {
    await audit.append({
      ...event,
      type: 'login.failed',
      reason: reason ?? 'unknown-account',
      data: where,
    })
    const lockouts = await recordFailure(db, keys, now, {
      maxFailures: config.loginMaxFailures,
      lockoutSeconds: config.loginLockoutSeconds,
    })
    for (const lockout of lockouts) {
      await audit.append({
        ...event,
        type: 'login.locked-out',
        reason: `${config.loginMaxFailures} failed sign-ins within ${config.loginLockoutSeconds}s`,
        data: { key: lockout.key, until: new Date(lockout.until).toISOString() },
      })
    }
    if (lockouts.length > 0) {
      return { ok: false, locked: true, retryAfterSeconds: config.loginLockoutSeconds }
    }
    return { ok: false, locked: false }
  }

  if (attempt.previousSessionId) {
    const ended = await endSession(deps, attempt.previousSessionId)
    if (ended) {
      await audit.append({
        actor: { type: 'user', id: ended.userId },
        requestId: attempt.requestId,
        type: 'session.ended',
        reason: 'replaced at sign-in',
        data: { session: ended.idHash.slice(0, 16) },
      })
    }
  }
  const session = await startSession(deps, user.id)
  await clearFailures(db, keys.account)
  await audit.append({
    ...event,
    type: 'login.succeeded',
    target: { type: 'user', id: user.id },
    data: { ...where, session: session.idHash.slice(0, 16) },
  })
  return { ok: true, user, session }
}

/** Ends the session a browser holds (sign-out) and records it. */
export async function signOut(
  deps: DeputyDeps,
  sessionId: string,
  requestId: string | null,
): Promise<void> {
  const ended = await endSession(deps, sessionId)
  if (!ended) return
  await deps.audit.append({
    actor: { type: 'user', id: ended.userId },
    requestId,
    type: 'session.ended',
    reason: 'signed out',
    target: { type: 'user', id: ended.userId },
    data: { session: ended.idHash.slice(0, 16) },
  })
}
