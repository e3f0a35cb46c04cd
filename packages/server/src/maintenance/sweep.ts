import type { Kysely } from 'kysely'
import type { AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { Clock } from '../lib/clock.js'
import { markChanged } from '../store/invalidations.js'
import type { Database } from '../store/schema.js'

/** Rows one statement deletes, so a sweep never holds a lock for long. */
const BATCH = 1000

/**
 * How long a used authorization code is kept after it expires: a replay within this time still
 * revokes what the code issued (RFC 6749 §4.1.2); after it the code is simply unknown.
 */
const CODE_RETENTION_MS = 3600_000

/** Metadata-document clients unused this long after their document went stale are forgotten. */
const STALE_METADATA_CLIENT_MS = 30 * 86_400_000

/**
 * A sweeper's claim on an expired request that did not become an `approval.expired` record in
 * this time (its process died in between) is taken again by the next sweep.
 */
const EXPIRY_CLAIM_TIMEOUT_MS = 10 * 60_000

/** How many rows one sweep removed, per kind. */
export interface SweepReport {
  authorizationCodes: number
  refreshTokens: number
  revokedAccessTokens: number
  clientAssertionJtis: number
  authorizationRequests: number
  sessions: number
  loginThrottle: number
  dynamicClients: number
  metadataDocumentClients: number
  /** Undecided approval requests whose expiry was recorded (`approval.expired`) by this sweep. */
  expiredApprovals: number
  /** Approval requests deleted `approvalRetentionDays` after they expired. */
  approvalRequests: number
  /** Redirects to an upstream provider (sign-in, connect) nobody came back from in time. */
  providerFlows: number
  /** Passkey challenges past their two minutes (registrations not finished, used sign-ins). */
  passkeyChallenges: number
  /** Shared rate-limit buckets (PostgreSQL) that are full again, so mean nothing. */
  rateLimitBuckets: number
}

/** What a sweep needs: the database, the time, the audit chain, and the throttle window. */
export interface SweepDeps {
  db: Kysely<Database>
  clock: Clock
  audit: AuditLog
  /**
   * `loginLockoutSeconds`: throttle counters older than the window count for nothing;
   * `approvalRetentionDays`: how long approval requests are kept after they expire;
   * `refreshTokenFamilyMaxLifetimeSeconds`: refresh tokens of older grants go, whatever their
   * own expiry (rows written before the setting was lowered).
   */
  config: Pick<
    ResolvedConfig,
    'loginLockoutSeconds' | 'approvalRetentionDays' | 'refreshTokenFamilyMaxLifetimeSeconds'
  >
}

type KeyedTable =
  | 'authorization_codes'
  | 'refresh_tokens'
  | 'revoked_access_tokens'
  | 'authorization_requests'
  | 'sessions'
  | 'provider_flows'
  | 'passkey_challenges'
  | 'rate_limit_buckets'

const KEYS = {
  authorization_codes: 'code_hash',
  refresh_tokens: 'token_hash',
  revoked_access_tokens: 'jti',
  authorization_requests: 'id_hash',
  sessions: 'id_hash',
  provider_flows: 'state_hash',
  passkey_challenges: 'challenge_hash',
  rate_limit_buckets: 'key',
} as const

/** Deletes, in batches, the rows of `table` that expired before `before`. */
async function sweepExpired(db: Kysely<Database>, table: KeyedTable, before: number) {
  const key = KEYS[table]
  let total = 0
  for (;;) {
    const result = await db
      .deleteFrom(table)
      .where(key, 'in', (eb) =>
        eb.selectFrom(table).select(key).where('expires_at', '<', before).limit(BATCH),
      )
      .executeTakeFirst()
    const removed = Number(result.numDeletedRows)
    total += removed
    if (removed < BATCH) return total
  }
}

/** Deletes clients by id in batches; their grants, consents, codes and tokens go with them. */
async function deleteClients(db: Kysely<Database>, ids: string[]): Promise<number> {
  let total = 0
  for (let i = 0; i < ids.length; i += BATCH) {
    const result = await db
      .deleteFrom('clients')
      .where('client_id', 'in', ids.slice(i, i + BATCH))
      .executeTakeFirst()
    total += Number(result.numDeletedRows)
  }
  // Every process drops what it cached of them at its next check (store/invalidations.ts).
  if (total > 0) await markChanged(db, 'clients')
  return total
}

/** Deletes, in batches, the refresh tokens of grants created before `before` (families past their end). */
async function sweepEndedFamilies(db: Kysely<Database>, before: number): Promise<number> {
  let total = 0
  for (;;) {
    const result = await db
      .deleteFrom('refresh_tokens')
      .where('token_hash', 'in', (eb) =>
        eb
          .selectFrom('refresh_tokens')
          .innerJoin('grants', 'grants.id', 'refresh_tokens.grant_id')
          .select('refresh_tokens.token_hash')
          .where('grants.created_at', '<', before)
          .limit(BATCH),
      )
      .executeTakeFirst()
    const removed = Number(result.numDeletedRows)
    total += removed
    if (removed < BATCH) return total
  }
}

/**
 * Records `approval.expired`, once each, for the requests that passed their expiry undecided. A
 * request is first claimed (one UPDATE: of several sweepers at once, one takes it, and a decision
 * can no longer land on it), then recorded, then marked recorded. A sweeper that dies between the
 * claim and the mark leaves a claim that the next sweep takes again after
 * EXPIRY_CLAIM_TIMEOUT_MS: the record is then written late, or (had the append committed)
 * twice, but never lost.
 */
async function recordExpiredApprovals(deps: SweepDeps, now: number): Promise<number> {
  const { db } = deps
  let recorded = 0
  for (;;) {
    const due = await db
      .selectFrom('approval_requests')
      .select(['id', 'client_id', 'user_id', 'resource', 'authorization_details', 'expires_at'])
      .where('status', '=', 'pending')
      .where('expires_at', '<=', now)
      .where('expiry_recorded_at', 'is', null)
      .where((eb) =>
        eb.or([
          eb('expiry_claimed_at', 'is', null),
          eb('expiry_claimed_at', '<', now - EXPIRY_CLAIM_TIMEOUT_MS),
        ]),
      )
      .orderBy('expires_at')
      .limit(BATCH)
      .execute()
    for (const row of due) {
      const claimed = await db
        .updateTable('approval_requests')
        .set({ expiry_claimed_at: now })
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .where('expiry_recorded_at', 'is', null)
        .where((eb) =>
          eb.or([
            eb('expiry_claimed_at', 'is', null),
            eb('expiry_claimed_at', '<', now - EXPIRY_CLAIM_TIMEOUT_MS),
          ]),
        )
        .executeTakeFirst()
      if (Number(claimed.numUpdatedRows) !== 1) continue
      await deps.audit.append({
        type: 'approval.expired',
        actor: { type: 'system', id: 'deputy', label: 'sweeper' },
        onBehalfOf: { type: 'user', id: row.user_id },
        target: { type: 'approval', id: row.id },
        data: {
          client: row.client_id,
          resource: row.resource,
          types: (JSON.parse(row.authorization_details) as { type: string }[]).map((d) => d.type),
          expiresAt: new Date(Number(row.expires_at)).toISOString(),
        },
      })
      await db
        .updateTable('approval_requests')
        .set({ expiry_recorded_at: now })
        .where('id', '=', row.id)
        .execute()
      recorded++
    }
    if (due.length < BATCH) return recorded
  }
}

/**
 * Deletes approval requests `approvalRetentionDays` after they expired: decided ones, and
 * undecided ones whose expiry is recorded (never one whose `approval.expired` is not written).
 * Their delivery log goes with them.
 */
async function sweepOldApprovals(deps: SweepDeps, now: number): Promise<number> {
  const before = now - deps.config.approvalRetentionDays * 86_400_000
  let total = 0
  for (;;) {
    const result = await deps.db
      .deleteFrom('approval_requests')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('approval_requests')
          .select('id')
          .where('expires_at', '<', before)
          .where((w) =>
            w.or([w('status', '!=', 'pending'), w('expiry_recorded_at', 'is not', null)]),
          )
          .limit(BATCH),
      )
      .executeTakeFirst()
    const removed = Number(result.numDeletedRows)
    total += removed
    if (removed < BATCH) return total
  }
}

/**
 * Removes what can no longer be used: expired codes (after a retention for replay detection),
 * refresh tokens past their lifetime (rotated ones included: a rotated token is kept until then so
 * its reuse still ends the family) or past their family's absolute lifetime, revocation records of
 * expired access tokens, spent assertion ids, abandoned authorization requests and provider
 * redirects, expired sessions, throttle counters whose window passed,
 * lapsed dynamic registrations, metadata-document clients nobody used for a month after their
 * document went stale (an operator's disable is kept), and approval requests past their retention.
 * First, before anything is deleted, the expiry of each undecided approval request is recorded.
 * One audit record says what went.
 */
export async function sweepExpiredRows(deps: SweepDeps): Promise<SweepReport> {
  const { db } = deps
  const now = deps.clock.now().getTime()
  const expiredApprovals = await recordExpiredApprovals(deps, now)
  const report: SweepReport = {
    authorizationCodes: await sweepExpired(db, 'authorization_codes', now - CODE_RETENTION_MS),
    refreshTokens:
      (await sweepExpired(db, 'refresh_tokens', now)) +
      (await sweepEndedFamilies(db, now - deps.config.refreshTokenFamilyMaxLifetimeSeconds * 1000)),
    revokedAccessTokens: await sweepExpired(db, 'revoked_access_tokens', now),
    clientAssertionJtis: Number(
      (
        await db
          .deleteFrom('client_assertion_jtis')
          .where('expires_at', '<', now)
          .executeTakeFirst()
      ).numDeletedRows,
    ),
    authorizationRequests: await sweepExpired(db, 'authorization_requests', now),
    sessions: await sweepExpired(db, 'sessions', now),
    loginThrottle: Number(
      (
        await db
          .deleteFrom('login_throttle')
          .where('window_started_at', '<', now - deps.config.loginLockoutSeconds * 1000)
          .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
          .executeTakeFirst()
      ).numDeletedRows,
    ),
    dynamicClients: 0,
    metadataDocumentClients: 0,
    expiredApprovals,
    approvalRequests: await sweepOldApprovals(deps, now),
    providerFlows: await sweepExpired(db, 'provider_flows', now),
    passkeyChallenges: await sweepExpired(db, 'passkey_challenges', now),
    rateLimitBuckets: await sweepExpired(db, 'rate_limit_buckets', now),
  }
  const lapsed = await db
    .selectFrom('clients')
    .select('client_id')
    .where('kind', '=', 'dynamic')
    .where('expires_at', '<', now)
    .execute()
  // Each lapsed registration is recorded before it goes, with the grants that end with it (its
  // grants, consents, codes and refresh tokens are deleted with the client; its access tokens
  // then introspect as inactive).
  for (const { client_id } of lapsed) {
    const active = await db
      .selectFrom('grants')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('client_id', '=', client_id)
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow()
    await deps.audit.append({
      type: 'client.expired',
      actor: { type: 'system', id: 'deputy', label: 'sweeper' },
      target: { type: 'client', id: client_id },
      data: { kind: 'dynamic', grantsEnded: Number(active.n) },
    })
  }
  report.dynamicClients = await deleteClients(
    db,
    lapsed.map((c) => c.client_id),
  )
  const stale = await db
    .selectFrom('clients')
    .select('client_id')
    .where('kind', '=', 'metadata_document')
    .where('status', '=', 'active')
    .where('expires_at', '<', now - STALE_METADATA_CLIENT_MS)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('grants')
            .select('grants.id')
            .whereRef('grants.client_id', '=', 'clients.client_id')
            .where('grants.revoked_at', 'is', null),
        ),
      ),
    )
    .execute()
  report.metadataDocumentClients = await deleteClients(
    db,
    stale.map((c) => c.client_id),
  )
  const { expiredApprovals: _recorded, ...deleted } = report
  if (Object.values(deleted).some((n) => n > 0)) {
    await deps.audit.append({
      type: 'store.swept',
      actor: { type: 'system', id: 'deputy', label: 'sweeper' },
      data: { ...deleted },
    })
  }
  return report
}
