import type { CompiledQuery, Kysely } from 'kysely'
import type { ResolvedConfig } from '../config/load.js'
import type { Clock } from '../lib/clock.js'
import { randomToken, sha256 } from '../lib/random.js'
import type { Database } from '../store/schema.js'
import { describeDevice } from './device.js'
import type { User, Users } from './users.js'

/** What browser sessions read and write: their table, their lifetime, the time, the people. */
export interface SessionDeps {
  db: Kysely<Database>
  config: Pick<ResolvedConfig, 'sessionTtlSeconds'>
  clock: Clock
  users: Pick<Users, 'findById'>
}

/** A signed-in browser session. */
export interface CurrentSession {
  user: User
  /** The session's CSRF token, to compare with a form field or `X-CSRF-Token` header. */
  csrfToken: string
  /**
   * When the session was signed in: a session starts only at sign-in, so for a password session
   * its start is the time of the last password entry (what a high-risk approval asks of).
   */
  signedInAt: number
  /** `password`, `passkey`, or `provider:<name>` for a sign-in through an upstream provider. */
  signedInWith: string
  /** SHA-256 of the session id: what binds something to this session (a passkey challenge). */
  idHash: string
}

/**
 * The session cookie's name. `__Host-` makes the browser insist on Secure, Path=/ and no Domain,
 * so a sibling subdomain cannot plant or overwrite it (RFC 6265bis §4.1.3.2).
 */
export const SESSION_COOKIE = '__Host-deputy-session'

// last_seen_at is for people reading the sessions table, not for security; one write a minute
// per session is plenty and keeps page views from turning into database writes.
const TOUCH_INTERVAL_MS = 60_000

/** The value of cookie `name` in a request's `Cookie` header, or undefined. */
export function cookieValue(request: Request, name: string): string | undefined {
  const header = request.headers.get('cookie')
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    const value = part.slice(eq + 1).trim()
    return value.length > 0 ? value : undefined
  }
  return undefined
}

/** A new session: the id goes in the cookie, only its SHA-256 is stored. */
export interface StartedSession {
  /** The cookie value. Shown to the browser once, never stored or logged. */
  id: string
  idHash: string
  csrfToken: string
  expiresAt: number
}

/** Starts a session for a user; the caller sets the cookie. */
export async function startSession(
  deps: SessionDeps,
  userId: string,
  /**
   * `password`, `passkey` (user-verified) or `provider:<name>`: a high-risk approval counts only a
   * fresh password or passkey.
   */
  signedInWith = 'password',
  /** The browser's User-Agent header; only its summary (identity/device.ts) is kept. */
  userAgent?: string,
): Promise<StartedSession> {
  const { session, writes } = prepareSession(deps, userId, signedInWith, userAgent)
  await deps.db.transaction().execute(async (trx) => {
    for (const write of writes) await trx.executeQuery(write)
  })
  return session
}

/**
 * A new session and the statements that store it (this person's expired sessions swept, the new
 * one inserted), for a caller that commits them with its audit record (AuditLog.appendWith).
 */
export function prepareSession(
  deps: SessionDeps,
  userId: string,
  signedInWith: string,
  userAgent?: string,
): { session: StartedSession; writes: CompiledQuery[] } {
  const id = randomToken(32)
  const idHash = sha256(id)
  const csrfToken = randomToken(32)
  const now = deps.clock.now().getTime()
  const expiresAt = now + deps.config.sessionTtlSeconds * 1000
  const writes = [
    // Sweep this user's expired sessions while we are here, so the table does not grow forever.
    deps.db
      .deleteFrom('sessions')
      .where('user_id', '=', userId)
      .where('expires_at', '<=', now)
      .compile(),
    deps.db
      .insertInto('sessions')
      .values({
        id_hash: idHash,
        user_id: userId,
        csrf_token: csrfToken,
        created_at: now,
        expires_at: expiresAt,
        last_seen_at: now,
        signed_in_with: signedInWith,
        device: describeDevice(userAgent),
      })
      .compile(),
  ]
  return { session: { id, idHash, csrfToken, expiresAt }, writes }
}

/**
 * Deletes the session a cookie value names, if it exists; returns its user id and hash for the
 * audit event, or undefined when there was nothing to end.
 */
export async function endSession(
  deps: SessionDeps,
  id: string,
): Promise<{ userId: string; idHash: string } | undefined> {
  const idHash = sha256(id)
  const row = await deps.db
    .deleteFrom('sessions')
    .where('id_hash', '=', idHash)
    .returning('user_id')
    .executeTakeFirst()
  return row ? { userId: row.user_id, idHash } : undefined
}

/**
 * The session `request` carries in its cookie, if it is live: not expired, and its person still
 * active. Anything else is treated as signed out.
 */
export async function readSession(
  deps: SessionDeps,
  request: Request,
): Promise<CurrentSession | null> {
  const id = cookieValue(request, SESSION_COOKIE)
  if (!id || id.length > 256) return null
  const idHash = sha256(id)
  const row = await deps.db
    .selectFrom('sessions')
    .selectAll()
    .where('id_hash', '=', idHash)
    .executeTakeFirst()
  if (!row) return null
  const now = deps.clock.now().getTime()
  if (Number(row.expires_at) <= now) {
    await deps.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute()
    return null
  }
  const user = await deps.users.findById(row.user_id)
  if (user?.status !== 'active') return null
  if (now - Number(row.last_seen_at) >= TOUCH_INTERVAL_MS) {
    await deps.db
      .updateTable('sessions')
      .set({ last_seen_at: now })
      .where('id_hash', '=', idHash)
      .execute()
  }
  return {
    user,
    csrfToken: row.csrf_token,
    signedInAt: Number(row.created_at),
    signedInWith: row.signed_in_with,
    idHash,
  }
}

/** One of a person's sessions as their account page lists it. */
export interface SessionEntry {
  /** The first 16 characters of the id's SHA-256 (base64url): how the page and the audit chain name it. */
  handle: string
  /** ISO times. */
  startedAt: string
  lastSeenAt: string
  expiresAt: string
  signedInWith: string
  /** "Firefox on Linux", or null when not known (sessions from before migration 0026). */
  device: string | null
}

/** A session's handle: a prefix of the hash, which names it without being its cookie. */
export function sessionHandle(idHash: string): string {
  return idHash.slice(0, 16)
}

const HANDLE_SHAPE = /^[A-Za-z0-9_-]{16}$/

/** A person's live sessions, the most recently seen first. */
export async function listSessions(deps: SessionDeps, userId: string): Promise<SessionEntry[]> {
  const now = deps.clock.now().getTime()
  const rows = await deps.db
    .selectFrom('sessions')
    .select(['id_hash', 'created_at', 'last_seen_at', 'expires_at', 'signed_in_with', 'device'])
    .where('user_id', '=', userId)
    .where('expires_at', '>', now)
    .orderBy('last_seen_at', 'desc')
    .execute()
  return rows.map((r) => ({
    handle: sessionHandle(r.id_hash),
    startedAt: new Date(Number(r.created_at)).toISOString(),
    lastSeenAt: new Date(Number(r.last_seen_at)).toISOString(),
    expiresAt: new Date(Number(r.expires_at)).toISOString(),
    signedInWith: r.signed_in_with,
    device: r.device,
  }))
}

/**
 * Ends a person's own sessions: the one `handle` names, or (`handle` null) every one but
 * `keepIdHash`. Only sessions of `userId` are touched, so a handle copied from someone else's
 * page ends nothing. Returns the handles ended.
 */
export async function endSessionsOf(
  deps: SessionDeps,
  userId: string,
  which: { handle: string } | { allBut: string },
): Promise<string[]> {
  let query = deps.db.deleteFrom('sessions').where('user_id', '=', userId)
  if ('handle' in which) {
    if (!HANDLE_SHAPE.test(which.handle)) return []
    // Matched here, not with LIKE: `_` and `-` are base64url digits, and `_` a LIKE wildcard.
    const own = await deps.db
      .selectFrom('sessions')
      .select('id_hash')
      .where('user_id', '=', userId)
      .execute()
    const hashes = own.map((r) => r.id_hash).filter((h) => sessionHandle(h) === which.handle)
    if (hashes.length === 0) return []
    query = query.where('id_hash', 'in', hashes)
  } else {
    query = query.where('id_hash', '!=', which.allBut)
  }
  const rows = await query.returning('id_hash').execute()
  return rows.map((r) => sessionHandle(r.id_hash))
}
