import type { Kysely } from 'kysely'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { randomId, randomToken, sha256 } from '../lib/random.js'
import type { Store } from '../store/db.js'
import { immediateTransaction } from '../store/exclusive.js'
import type { ApprovalRequestsTable, Database } from '../store/schema.js'
import type { AuthorizationDetail } from './detail-types.js'

// A backchannel authentication request (OpenID CIBA Core 1.0) from the client's ask to the
// person's decision and the one token it may yield. The auth_req_id is 256 random bits and only
// its SHA-256 is stored; the person's page names the request by a separate random id.

/** The channel on which decisions (and new requests) are signalled to every replica. */
export const APPROVALS_CHANNEL = 'deputy_approvals'

/** What a signal on APPROVALS_CHANNEL says: which request, for whom, and what happened. */
export interface ApprovalSignal {
  id: string
  userId: string
  event: 'requested' | 'approved' | 'denied'
}

/** A request as the rest of Deputy sees it. */
export interface ApprovalRequest {
  id: string
  clientId: string
  userId: string
  resource: string
  scopes: string[]
  authorizationDetails: AuthorizationDetail[]
  bindingMessage: string | null
  /** `expired` when still undecided past its expiry. */
  status: 'pending' | 'approved' | 'denied' | 'expired'
  deliveryMode: 'poll' | 'ping'
  intervalSeconds: number
  createdAt: number
  expiresAt: number
  decidedAt: number | null
  decidedBy: Actor | null
  shownDigest: string | null
  consumedAt: number | null
}

/** What a client asked, as the backchannel endpoint validated it. */
export interface NewApprovalRequest {
  clientId: string
  userId: string
  resource: string
  scopes: string[]
  authorizationDetails: AuthorizationDetail[]
  bindingMessage: string | null
  expiresInSeconds: number
  deliveryMode: 'poll' | 'ping'
  /** CIBA §7.1 `client_notification_token` (ping mode): sealed, sent back as a Bearer token. */
  notificationToken: string | null
}

/** The outcome of one poll at the token endpoint (CIBA §11). */
export type PollResult =
  | { status: 'unknown' }
  | { status: 'wrong-client' }
  | { status: 'consumed' }
  | { status: 'expired' }
  | { status: 'slow-down'; intervalSeconds: number }
  | { status: 'pending' }
  | { status: 'denied' }
  | { status: 'approved'; request: ApprovalRequest }

/** The outcome of a decision. */
export type DecideResult =
  | { status: 'decided'; request: ApprovalRequest }
  | { status: 'not-found' }
  | { status: 'already-decided'; request: ApprovalRequest }
  | { status: 'expired'; request: ApprovalRequest }

/** CIBA §11: each slow_down makes the interval this much longer. */
export const SLOW_DOWN_STEP_SECONDS = 5

export interface ApprovalRequestsDeps {
  store: Store
  clock: Clock
  sealer: Sealer
  audit: AuditLog
}

function sealContext(id: string, field: 'client_notification_token' | 'auth_req_id'): string {
  return `approval_requests:${id}:${field}`
}

function toRequest(row: ApprovalRequestsTable, now: number): ApprovalRequest {
  const status = row.status === 'pending' && Number(row.expires_at) <= now ? 'expired' : row.status
  return {
    id: row.id,
    clientId: row.client_id,
    userId: row.user_id,
    resource: row.resource,
    scopes: row.scope ? row.scope.split(' ') : [],
    authorizationDetails: JSON.parse(row.authorization_details) as AuthorizationDetail[],
    bindingMessage: row.binding_message,
    status,
    deliveryMode: row.delivery_mode,
    intervalSeconds: Number(row.interval_seconds),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
    decidedBy: row.decided_by === null ? null : (JSON.parse(row.decided_by) as Actor),
    shownDigest: row.shown_digest,
    consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
  }
}

/** A transaction serialised with every other one naming the same thing (store/exclusive.ts). */
function lockedFor<T>(store: Store, key: string, work: (trx: Kysely<Database>) => Promise<T>) {
  return immediateTransaction(store, work, key)
}

/** The store of approval requests: create, decide, poll, list, and the signals between replicas. */
export function createApprovalRequests(deps: ApprovalRequestsDeps) {
  const { store, clock } = deps
  const db = store.db

  const now = () => clock.now().getTime()

  async function byId(id: string): Promise<ApprovalRequest | undefined> {
    if (id.length > 64) return undefined
    const row = await db
      .selectFrom('approval_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return row ? toRequest(row, now()) : undefined
  }

  function signal(payload: ApprovalSignal): Promise<void> {
    return store.signals.publish(APPROVALS_CHANNEL, JSON.stringify(payload))
  }

  return {
    byId,

    /**
     * Stores a new request unless the client already has `maxPending` undecided ones for this
     * person (then null). Returns the auth_req_id, shown once.
     */
    async create(
      input: NewApprovalRequest,
      limits: { intervalSeconds: number; maxPending: number },
    ): Promise<{ authReqId: string; request: ApprovalRequest } | null> {
      const authReqId = randomToken(32)
      const id = randomId(16)
      const at = now()
      const created = await lockedFor(
        store,
        `approvals:${input.clientId}:${input.userId}`,
        async (trx) => {
          const pending = await trx
            .selectFrom('approval_requests')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('client_id', '=', input.clientId)
            .where('user_id', '=', input.userId)
            .where('status', '=', 'pending')
            .where('expires_at', '>', at)
            .executeTakeFirstOrThrow()
          if (Number(pending.n) >= limits.maxPending) return false
          await trx
            .insertInto('approval_requests')
            .values({
              id,
              auth_req_hash: sha256(authReqId),
              client_id: input.clientId,
              user_id: input.userId,
              resource: input.resource,
              scope: [...new Set(input.scopes)].sort().join(' '),
              authorization_details: JSON.stringify(input.authorizationDetails),
              binding_message: input.bindingMessage,
              status: 'pending',
              delivery_mode: input.deliveryMode,
              notification_token_sealed:
                input.notificationToken === null
                  ? null
                  : deps.sealer.seal(
                      input.notificationToken,
                      sealContext(id, 'client_notification_token'),
                    ),
              auth_req_id_sealed:
                input.deliveryMode === 'ping'
                  ? deps.sealer.seal(authReqId, sealContext(id, 'auth_req_id'))
                  : null,
              interval_seconds: limits.intervalSeconds,
              next_poll_at: at,
              created_at: at,
              expires_at: at + input.expiresInSeconds * 1000,
            })
            .execute()
          return true
        },
      )
      if (!created) return null
      const request = (await byId(id)) as ApprovalRequest
      await signal({ id, userId: input.userId, event: 'requested' })
      return { authReqId, request }
    },

    /**
     * Records the person's (or an operator's) decision, once: only a pending, unexpired request
     * can be decided, and of two decisions at once exactly one counts. `shownDigest` is the digest
     * of what the decision page showed, stored with it. The decision takes effect with
     * `markRecorded`, once its audit record is written.
     */
    async decide(
      id: string,
      decision: 'approved' | 'denied',
      actor: Actor,
      shownDigest: string | null,
    ): Promise<DecideResult> {
      const at = now()
      const result = await db
        .updateTable('approval_requests')
        .set({
          status: decision,
          decided_at: at,
          decided_by: JSON.stringify(actor),
          shown_digest: shownDigest,
        })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where('expires_at', '>', at)
        // Taken by a sweeper as expired (a replica whose clock runs ahead): it stays expired.
        .where('expiry_claimed_at', 'is', null)
        .executeTakeFirst()
      const request = await byId(id)
      if (!request) return { status: 'not-found' }
      if (Number(result.numUpdatedRows) !== 1)
        return request.status === 'expired'
          ? { status: 'expired', request }
          : { status: 'already-decided', request }
      return { status: 'decided', request }
    },

    /**
     * One poll of the token endpoint (CIBA §10.1, §11): bound to the client it was issued to;
     * polled faster than the interval, `slow-down` and the interval grows by 5 s; approved, the
     * request is consumed atomically, so of any number of polls at once exactly one gets it.
     */
    async poll(authReqId: string, clientId: string): Promise<PollResult> {
      const hash = sha256(authReqId)
      const at = now()
      return lockedFor(store, `approval-poll:${hash}`, async (trx) => {
        const row = await trx
          .selectFrom('approval_requests')
          .selectAll()
          .where('auth_req_hash', '=', hash)
          .executeTakeFirst()
        if (!row) return { status: 'unknown' } as const
        if (row.client_id !== clientId) return { status: 'wrong-client' } as const
        if (row.consumed_at !== null) return { status: 'consumed' } as const
        const request = toRequest(row, at)
        // A decision, approval or denial, counts once its audit record is written (decide.ts).
        if (request.status === 'denied' && row.decision_recorded_at !== null)
          return { status: 'denied' } as const
        if (at >= request.expiresAt) return { status: 'expired' } as const
        if (at < Number(row.next_poll_at)) {
          const interval = request.intervalSeconds + SLOW_DOWN_STEP_SECONDS
          await trx
            .updateTable('approval_requests')
            .set({ interval_seconds: interval, next_poll_at: at + interval * 1000 })
            .where('id', '=', row.id)
            .execute()
          return { status: 'slow-down', intervalSeconds: interval } as const
        }
        if (request.status !== 'approved' || row.decision_recorded_at === null) {
          await trx
            .updateTable('approval_requests')
            .set({ next_poll_at: at + request.intervalSeconds * 1000 })
            .where('id', '=', row.id)
            .execute()
          return { status: 'pending' } as const
        }
        const consumed = await trx
          .updateTable('approval_requests')
          .set({ consumed_at: at })
          .where('id', '=', row.id)
          .where('consumed_at', 'is', null)
          .executeTakeFirst()
        if (Number(consumed.numUpdatedRows) !== 1) return { status: 'consumed' } as const
        return { status: 'approved', request: { ...request, consumedAt: at } } as const
      })
    },

    /**
     * Marks a decision as written to the audit chain — from now on an approval counts — and
     * signals it to every replica (waiting polls, live inbox pages).
     */
    async markRecorded(request: ApprovalRequest): Promise<void> {
      await db
        .updateTable('approval_requests')
        .set({ decision_recorded_at: now() })
        .where('id', '=', request.id)
        .execute()
      if (request.status === 'approved' || request.status === 'denied')
        await signal({ id: request.id, userId: request.userId, event: request.status })
    },

    /** What a ping for a ping-mode request carries: its auth_req_id and the client's token. */
    async pingCredentials(id: string): Promise<{ authReqId: string; token: string } | null> {
      const row = await db
        .selectFrom('approval_requests')
        .select(['notification_token_sealed', 'auth_req_id_sealed'])
        .where('id', '=', id)
        .executeTakeFirst()
      if (!row?.notification_token_sealed || !row.auth_req_id_sealed) return null
      return {
        authReqId: deps.sealer.open(row.auth_req_id_sealed, sealContext(id, 'auth_req_id')),
        token: deps.sealer.open(
          row.notification_token_sealed,
          sealContext(id, 'client_notification_token'),
        ),
      }
    },

    /** A person's requests: the pending ones (newest first), or the decided and expired ones. */
    async listForUser(
      userId: string,
      which: 'pending' | 'history',
      limit = 50,
    ): Promise<ApprovalRequest[]> {
      const at = now()
      let query = db.selectFrom('approval_requests').selectAll().where('user_id', '=', userId)
      query =
        which === 'pending'
          ? query.where('status', '=', 'pending').where('expires_at', '>', at)
          : query.where((eb) => eb.or([eb('status', '!=', 'pending'), eb('expires_at', '<=', at)]))
      const rows = await query.orderBy('created_at', 'desc').limit(limit).execute()
      return rows.map((row) => toRequest(row, at))
    },

    /** Every request (operators), newest first, optionally only one status, person or client. */
    async list(
      options: {
        status?: ApprovalRequest['status']
        userId?: string
        clientId?: string
        limit?: number
      } = {},
    ) {
      const at = now()
      let query = db.selectFrom('approval_requests').selectAll()
      if (options.userId !== undefined) query = query.where('user_id', '=', options.userId)
      if (options.clientId !== undefined) query = query.where('client_id', '=', options.clientId)
      if (options.status === 'pending')
        query = query.where('status', '=', 'pending').where('expires_at', '>', at)
      else if (options.status === 'expired')
        query = query.where('status', '=', 'pending').where('expires_at', '<=', at)
      else if (options.status) query = query.where('status', '=', options.status)
      const rows = await query
        .orderBy('created_at', 'desc')
        .limit(options.limit ?? 100)
        .execute()
      return rows.map((row) => toRequest(row, at))
    },

    /** Calls `listener` for every request created or decided, on any replica; returns how to stop. */
    subscribe(listener: (signal: ApprovalSignal) => void): () => void {
      return store.signals.subscribe(APPROVALS_CHANNEL, (payload) => {
        try {
          listener(JSON.parse(payload) as ApprovalSignal)
        } catch {
          // Not ours: ignored.
        }
      })
    },

    /**
     * Resolves with the request once it is decided or expired, or after `timeoutMs` with it as it
     * is: a decision on any replica wakes the wait at once.
     */
    async waitForDecision(id: string, timeoutMs: number): Promise<ApprovalRequest | undefined> {
      // Listen before reading, so a decision between the read and the subscription is not missed.
      let wake: () => void = () => {}
      const woken = new Promise<void>((resolve) => {
        wake = resolve
      })
      const stop = store.signals.subscribe(APPROVALS_CHANNEL, (payload) => {
        if (payload.includes(`"${id}"`)) wake()
      })
      try {
        // PostgreSQL: the LISTEN is in place before the read, so no decision falls between them.
        await store.signals.ready(APPROVALS_CHANNEL)
        const first = await byId(id)
        if (first?.status !== 'pending') return first
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.max(0, Math.min(timeoutMs, first.expiresAt - now())))
          timer.unref()
        })
        await Promise.race([woken, timeout])
        clearTimeout(timer)
        return await byId(id)
      } finally {
        stop()
      }
    },
  }
}

export type ApprovalRequests = ReturnType<typeof createApprovalRequests>
