import type { RefusalLog } from '../audit/refusals.js'
import type { Actor, AuditEventInput, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import { normaliseEmail } from '../keys/digest.js'
import { verifyPassword } from './passwords.js'
import { endSession, prepareSession, type SessionDeps, type StartedSession } from './sessions.js'
import { claimAttempt, recordSuccess, type ThrottleSettings, throttleKeys } from './throttle.js'
import type { User, Users } from './users.js'

/** What signing in and out reads and writes, besides the sessions themselves. */
export interface LoginDeps extends SessionDeps {
  config: Pick<
    ResolvedConfig,
    'sessionTtlSeconds' | 'loginMaxFailures' | 'loginMaxFailuresPerAddress' | 'loginLockoutSeconds'
  >
  users: Pick<Users, 'findById' | 'findByEmail' | 'passwordHashOf'>
  audit: AuditLog
  refusals: Pick<RefusalLog, 'record'>
  /** The keyed digest of a typed email, for records of accounts that may not exist. */
  emailDigest(email: string): string
}

/** One sign-in attempt, as the login form delivers it. */
export interface LoginAttempt {
  email: string
  password: string
  /** The client's network address (http/client-address.ts), or undefined when the host cannot tell. */
  address: string | undefined
  /** The session cookie the browser already had, if any; it is ended, never reused. */
  previousSessionId: string | undefined
  requestId: string | null
  /** The browser's User-Agent header, summarised on the session (identity/device.ts). */
  userAgent?: string
}

/** Why a sign-in failed. Recorded in the audit chain only; the person sees one generic message. */
export type LoginFailureReason = 'unknown-account' | 'wrong-password' | 'disabled' | 'locked'

export type LoginResult =
  | { ok: true; user: User; session: StartedSession }
  | { ok: false; locked: false }
  | { ok: false; locked: true; retryAfterSeconds: number }

/** The outcome of checking a typed password against the throttle and the account. */
export type PasswordCheck =
  | { ok: true; user: User; settle(): Promise<void> }
  | { ok: false; locked: false }
  | { ok: false; locked: true; retryAfterSeconds: number }

/**
 * Checks an email and password against an active account, claiming the attempt against the
 * (account, address) pair and the address before the password is checked (identity/throttle.ts),
 * so a flood from one place only slows that place. A typed email that matches no account is
 * recorded only as a keyed digest, and unknown accounts are throttled exactly like known ones.
 * Every guess at a password goes through here — the sign-in form's and the current password the
 * security page asks for before a change (`method`) — so neither is an unthrottled oracle.
 * On success, `settle()` clears the throttle's failures once the caller has done its work.
 */
export async function checkPassword(
  deps: LoginDeps,
  attempt: Omit<LoginAttempt, 'previousSessionId'> & { method: 'password' | 'password-change' },
): Promise<PasswordCheck> {
  const { db, clock, config, audit } = deps
  const now = clock.now().getTime()
  const email = normaliseEmail(attempt.email)
  const digest = deps.emailDigest(email)
  const keys = throttleKeys(digest, attempt.address)
  const user = await deps.users.findByEmail(attempt.email)
  const actor: Actor = user
    ? { type: 'user', id: user.id, label: user.email }
    : { type: 'user', id: 'unknown', label: digest }
  const event = { actor, requestId: attempt.requestId }
  const where = {
    method: attempt.method,
    email: user ? user.email : digest,
    address: attempt.address ?? 'unknown',
  }
  const settings: ThrottleSettings = {
    maxFailures: config.loginMaxFailures,
    maxFailuresPerAddress: config.loginMaxFailuresPerAddress,
    longestWaitSeconds: config.loginLockoutSeconds,
  }
  // Failures anyone can cause without knowing anything are summarised (audit/refusals.ts);
  // those against a real account's password are each written.
  const refused = (reason: LoginFailureReason, data: Record<string, unknown>) => {
    const failed: AuditEventInput = { ...event, type: 'login.failed', reason, data }
    return reason === 'unknown-account' || reason === 'locked'
      ? deps.refusals.record(failed)
      : audit.append(failed).then(() => undefined)
  }

  // Written once, when attempts from somewhere start to wait.
  const lockedOut = async (started: { key: string; until: number; failures: number }[]) => {
    for (const { key, until, failures } of started) {
      await audit.append({
        ...event,
        type: 'login.locked-out',
        reason: `${failures} failed sign-ins: attempts from ${where.address} now wait`,
        data: { key, until: new Date(until).toISOString() },
      })
    }
  }

  const claim = await claimAttempt(db, keys, now, settings)
  if (!claim.ok) {
    await lockedOut(claim.started)
    await refused('locked', where)
    return { ok: false, locked: true, retryAfterSeconds: claim.retryAfterSeconds }
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
    await refused(reason ?? 'unknown-account', where)
    await lockedOut(claim.started)
    if (claim.waitSeconds > 0) {
      return { ok: false, locked: true, retryAfterSeconds: claim.waitSeconds }
    }
    return { ok: false, locked: false }
  }
  return { ok: true, user, settle: () => recordSuccess(db, keys, settings) }
}

/**
 * Checks an email and password (`checkPassword`) and, when they match an active account, starts
 * a fresh session. The session the browser came with is ended so a planted session id cannot
 * survive sign-in (session fixation, OWASP ASVS V3.2.1).
 */
export async function signIn(deps: LoginDeps, attempt: LoginAttempt): Promise<LoginResult> {
  const checked = await checkPassword(deps, { ...attempt, method: 'password' })
  if (!checked.ok) return checked
  const { user } = checked
  await endReplacedSession(deps, attempt.previousSessionId, attempt.requestId)
  // The session and its login.succeeded record commit together, in the audit chain's group
  // commit (off the event loop on a SQLite file): no session exists without its record.
  const { session, writes } = prepareSession(deps, user.id, 'password', attempt.userAgent)
  await deps.audit.appendWith(
    {
      actor: { type: 'user', id: user.id, label: user.email },
      requestId: attempt.requestId,
      type: 'login.succeeded',
      target: { type: 'user', id: user.id },
      data: {
        method: 'password',
        email: user.email,
        address: attempt.address ?? 'unknown',
        session: session.idHash.slice(0, 16),
      },
    },
    { writes },
  )
  await checked.settle()
  return { ok: true, user, session }
}

/**
 * Ends the session a browser came to sign-in with, if any, and records it: a planted session id
 * must not survive sign-in (session fixation, OWASP ASVS V3.2.1).
 */
export async function endReplacedSession(
  deps: SessionDeps & { audit: AuditLog },
  previousSessionId: string | undefined,
  requestId: string | null,
): Promise<void> {
  if (!previousSessionId) return
  const ended = await endSession(deps, previousSessionId)
  if (!ended) return
  await deps.audit.append({
    actor: { type: 'user', id: ended.userId },
    requestId,
    type: 'session.ended',
    reason: 'replaced at sign-in',
    data: { session: ended.idHash.slice(0, 16) },
  })
}

/** Ends the session a browser holds (sign-out) and records it. */
export async function signOut(
  deps: LoginDeps,
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
