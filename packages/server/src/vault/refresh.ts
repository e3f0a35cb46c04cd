import type { AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { type Provider, ProviderError, type Providers } from '../providers/types.js'
import type { Store } from '../store/db.js'
import { immediateTransaction } from '../store/exclusive.js'
import type { ConnectionRow, ConnectionStore } from './connections.js'
import { type VaultAccessToken, VaultError } from './types.js'

/**
 * How long a claimed refresh may take before another process may claim it again: longer than a
 * provider round trip can last (the upstream fetch gives up after seconds), so it only runs out
 * when the claiming process died mid-refresh.
 */
export const REFRESH_LEASE_MS = 30_000
/** How often a process waiting for another's refresh re-reads the row. */
const WAIT_POLL_MS = 50
/** Back-off after transient failures: 1 s, doubling per failure, at most 5 minutes. */
const BACKOFF_BASE_MS = 1_000
const BACKOFF_CAP_MS = 5 * 60_000

export interface RefreshDeps {
  store: Store
  clock: Clock
  audit: AuditLog
  providers: Pick<Providers, 'refresh'>
  connections: ConnectionStore
  /** Refresh when the access token expires within this many seconds. */
  refreshAheadSeconds: number
}

/** The claim's outcome, decided under the row lock. */
type Claim =
  | { kind: 'claimed'; row: ConnectionRow }
  | { kind: 'changed'; row: ConnectionRow }
  | { kind: 'busy'; row: ConnectionRow }
  | { kind: 'backing-off'; row: ConnectionRow }
  | { kind: 'gone' }

/** Back-off after the `failures`-th transient failure in a row. */
export function backoffMs(failures: number): number {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1))
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

/**
 * The refresh discipline: one refresh per connection at a time, in this process and across all
 * processes on the database.
 *
 * - In process: a Map of promises, one per connection, so concurrent callers share one refresh.
 * - Across processes: a lease (`refresh_lease_until`, migration 0015) claimed by compare-and-swap
 *   in a short transaction that holds the row lock — PostgreSQL `SELECT … FOR UPDATE`, SQLite
 *   `BEGIN IMMEDIATE` (store/exclusive.ts) — and re-reads the row after taking it: when
 *   `token_version` moved since we looked, another process refreshed and its token is used
 *   without asking the provider. The provider call itself happens outside any transaction:
 *   SQLite has one writer, and holding its write lock for a network round trip would stall every
 *   write of every process on the file (audit, sign-ins), and a PostgreSQL connection held idle
 *   in a transaction for seconds is no better. The winner writes the new tokens with
 *   `token_version + 1` (only if the version is still the one it claimed with), the others poll
 *   for that change. A provider that rotates refresh tokens (and revokes the grant when an old
 *   one is presented twice, RFC 9700 §4.14.2) is therefore never sent the same one twice.
 */
export function createRefresher(deps: RefreshDeps) {
  const { store, clock, connections } = deps
  const aheadMs = deps.refreshAheadSeconds * 1000
  const inFlight = new Map<string, Promise<VaultAccessToken>>()

  const handOut = (row: ConnectionRow): VaultAccessToken => ({
    accessToken: connections.open(row).accessToken,
    expiresAt: row.access_token_expires_at === null ? null : Number(row.access_token_expires_at),
    scopes: JSON.parse(row.scopes) as string[],
  })
  const expired = (row: ConnectionRow, now: number) =>
    row.access_token_expires_at !== null && Number(row.access_token_expires_at) <= now
  const fresh = (row: ConnectionRow, now: number) =>
    row.access_token_expires_at === null || Number(row.access_token_expires_at) - now > aheadMs

  /** Under the row lock: re-read, and claim the refresh unless someone else did or does. */
  function claim(seen: ConnectionRow): Promise<Claim> {
    return immediateTransaction(store, async (trx) => {
      const row = await connections.byId(seen.id, trx, true)
      if (row?.status !== 'active') return { kind: 'gone' }
      const now = clock.now().getTime()
      if (row.token_version !== seen.token_version) return { kind: 'changed', row }
      if (row.refresh_lease_until !== null && Number(row.refresh_lease_until) > now)
        return { kind: 'busy', row }
      if (row.refresh_not_before !== null && Number(row.refresh_not_before) > now)
        return { kind: 'backing-off', row }
      await trx
        .updateTable('connections')
        .set({ refresh_lease_until: now + REFRESH_LEASE_MS })
        .where('id', '=', row.id)
        .where('token_version', '=', row.token_version)
        .execute()
      return { kind: 'claimed', row }
    })
  }

  /** After a failed or refused refresh: the old token while it lasts, else the error. */
  function fallback(row: ConnectionRow, error: VaultError): VaultAccessToken {
    if (!expired(row, clock.now().getTime())) return handOut(row)
    throw error
  }

  const unavailable = (row: ConnectionRow) =>
    new VaultError(
      'provider_unavailable',
      row.provider,
      `${row.provider} cannot be reached to refresh the connection; try again later`,
    )
  const reconnect = (row: ConnectionRow) =>
    new VaultError(
      'connection_required',
      row.provider,
      `the ${row.provider} connection must be connected again`,
      JSON.parse(row.scopes) as string[],
    )

  async function refreshAtProvider(provider: Provider, row: ConnectionRow) {
    const { refreshToken } = connections.open(row)
    if (refreshToken === null) throw new ProviderError('invalid_grant', 'no refresh token held')
    const tokens = await deps.providers.refresh(provider, refreshToken)
    const now = clock.now().getTime()
    const scopes = tokens.scopes.length > 0 ? tokens.scopes : (JSON.parse(row.scopes) as string[])
    const written = await store.db
      .updateTable('connections')
      .set({
        access_token_sealed: connections.seal(row, 'access_token', tokens.accessToken),
        access_token_expires_at: tokens.expiresAt,
        // A provider that does not rotate keeps the refresh token valid: keep it.
        ...(tokens.refreshToken === null
          ? {}
          : { refresh_token_sealed: connections.seal(row, 'refresh_token', tokens.refreshToken) }),
        scopes: JSON.stringify(scopes),
        token_version: row.token_version + 1,
        refresh_lease_until: null,
        refresh_failures: 0,
        refresh_not_before: null,
        last_error: null,
        updated_at: now,
      })
      .where('id', '=', row.id)
      .where('token_version', '=', row.token_version)
      .executeTakeFirst()
    // Disconnected or reconnected meanwhile: the connection we refreshed is not there any more.
    if (Number(written.numUpdatedRows) !== 1) throw reconnect(row)
    await deps.audit.append({
      type: 'connection.refreshed',
      actor: { type: 'system', id: 'deputy' },
      onBehalfOf: { type: 'user', id: row.user_id },
      target: { type: 'connection', id: row.id },
      data: { provider: row.provider, expiresAt: tokens.expiresAt, scopes },
    })
    const updated = await connections.byId(row.id)
    if (!updated) throw reconnect(row)
    return handOut(updated)
  }

  /** A refresh the provider refused or failed: needs_reconnect, or back off. */
  async function recordFailure(row: ConnectionRow, err: unknown): Promise<VaultAccessToken> {
    const now = clock.now().getTime()
    const code = err instanceof ProviderError ? err.code : 'unexpected'
    if (err instanceof ProviderError && err.code === 'invalid_grant') {
      await deps.audit.append({
        type: 'connection.needs_reconnect',
        actor: { type: 'system', id: 'deputy' },
        onBehalfOf: { type: 'user', id: row.user_id },
        target: { type: 'connection', id: row.id },
        reason: 'the provider refused the refresh token (invalid_grant)',
        data: { provider: row.provider },
      })
      await store.db
        .updateTable('connections')
        .set({
          status: 'needs_reconnect',
          refresh_lease_until: null,
          last_error: code,
          updated_at: now,
        })
        .where('id', '=', row.id)
        .where('token_version', '=', row.token_version)
        .execute()
      throw reconnect(row)
    }
    // Transient (network, 5xx, rate limit) and anything else the person cannot fix by
    // reconnecting (a misconfigured client): back off, exponentially, capped.
    const failures = row.refresh_failures + 1
    await store.db
      .updateTable('connections')
      .set({
        refresh_lease_until: null,
        refresh_failures: failures,
        refresh_not_before: now + backoffMs(failures),
        last_error: code,
        updated_at: now,
      })
      .where('id', '=', row.id)
      .where('token_version', '=', row.token_version)
      .execute()
    return fallback(row, unavailable(row))
  }

  /** Polls until another process's refresh wrote a new version or its lease ran out. */
  async function waitForRefresh(row: ConnectionRow): Promise<void> {
    for (;;) {
      await sleep(WAIT_POLL_MS)
      const again = await connections.byId(row.id)
      if (!again || again.token_version !== row.token_version) return
      const lease = again.refresh_lease_until
      if (lease === null || Number(lease) <= clock.now().getTime()) return
    }
  }

  /** One caller's way through the discipline; the in-process map shares it. */
  async function refresh(provider: Provider, seen: ConnectionRow): Promise<VaultAccessToken> {
    let current = seen
    for (;;) {
      const outcome = await claim(current)
      if (outcome.kind === 'gone') {
        const row = await connections.byId(current.id)
        throw reconnect(row ?? current)
      }
      const { row } = outcome
      const now = clock.now().getTime()
      if (outcome.kind === 'changed') {
        // Another process refreshed (or the person reconnected) while we looked.
        if (!expired(row, now)) return handOut(row)
        current = row
        continue
      }
      if (outcome.kind === 'backing-off') return fallback(row, unavailable(row))
      if (outcome.kind === 'busy') {
        // Someone else is refreshing: a token that still works is good enough meanwhile;
        // otherwise wait (plain reads, no write lock) for its version to move or its lease to end.
        if (!expired(row, now)) return handOut(row)
        await waitForRefresh(row)
        // The claim compares with the version seen here: a refresh done meanwhile is 'changed'.
        current = row
        continue
      }
      try {
        return await refreshAtProvider(provider, row)
      } catch (err) {
        if (err instanceof VaultError) throw err
        return recordFailure(row, err)
      }
    }
  }

  return {
    /** The row's token when fresh enough, else a refreshed one, never racing another refresher. */
    async accessToken(provider: Provider, row: ConnectionRow): Promise<VaultAccessToken> {
      if (fresh(row, clock.now().getTime())) return handOut(row)
      const running = inFlight.get(row.id)
      if (running) return running
      const started = refresh(provider, row).finally(() => inFlight.delete(row.id))
      inFlight.set(row.id, started)
      return started
    },
  }
}
