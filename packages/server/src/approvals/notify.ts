import type { Kysely } from 'kysely'
import type { Logger } from 'pino'
import type { AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { randomId } from '../lib/random.js'
import { type SafeFetchOptions, safeFetch } from '../lib/safe-fetch.js'
import type { Database } from '../store/schema.js'
import type { ApprovalRequest, ApprovalRequests } from './requests.js'

// Telling people and clients about approval requests. People: the inbox always (its live page
// listens to the approvals signal), and whatever channels they chose on their account page
// (email, signed webhooks, …: a registry of channels). Clients in CIBA ping mode: a POST of
// `{auth_req_id}` with their client_notification_token once the person has decided (CIBA §10.2).
// Every delivery is retried with exponential backoff and logged in `approval_notifications`.

/** What a person is told about a new request: enough to recognise it, and the link to decide. */
export interface ApprovalNotice {
  request: ApprovalRequest
  person: { id: string; email: string; name: string }
  clientName: string
  /** The request's page, where the person decides (an absolute URL). */
  link: string
  /** The request in words (binding message, details), as its page shows them. */
  summary: string
}

/** A way of telling a person; the registry grows (email, webhook, Web Push). */
export interface NotificationChannel {
  readonly name: string
  /** Where a notice goes, without secrets, for the delivery log (an address, a host). */
  target(settings: Record<string, unknown>, person: ApprovalNotice['person']): string
  /** Sends one notice; throws when it did not arrive (it is then retried). */
  send(notice: ApprovalNotice, settings: Record<string, unknown>): Promise<void>
}

/** How deliveries are retried: `attempts` in all, waiting `baseDelayMs`, then twice as long, … */
export interface RetryPolicy {
  attempts: number
  baseDelayMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 1000 }

export interface ApprovalNotifierDeps {
  db: Kysely<Database>
  clock: Clock
  audit: AuditLog
  logger: Logger
  approvals: Pick<ApprovalRequests, 'pingCredentials'>
  /** The channels people may choose, by name. */
  channels: readonly NotificationChannel[]
  /** How pings and webhooks are fetched (the SSRF guard's settings). */
  fetchOptions: Pick<SafeFetchOptions, 'allowHttpLoopback' | 'timeoutMs'>
  retry?: RetryPolicy
}

/** Sends notices and pings in the background; `idle()` resolves when none is in flight. */
export function createApprovalNotifier(deps: ApprovalNotifierDeps) {
  const retry = deps.retry ?? DEFAULT_RETRY
  const inFlight = new Set<Promise<void>>()
  /** Waits between attempts, by timer; closing ends them all at once. */
  const sleeping = new Map<NodeJS.Timeout, () => void>()
  let closed = false

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        sleeping.delete(timer)
        resolve()
      }, ms)
      timer.unref()
      sleeping.set(timer, resolve)
    })
  }

  /** Delivers once with retries, logging each attempt; records `approval.notified` on success. */
  function deliver(
    request: ApprovalRequest,
    channel: string,
    target: string,
    send: () => Promise<void>,
  ): void {
    const task = (async () => {
      const id = randomId(12)
      const created = deps.clock.now().getTime()
      await deps.db
        .insertInto('approval_notifications')
        .values({
          id,
          approval_id: request.id,
          channel,
          target: target.slice(0, 500),
          status: 'pending',
          attempts: 0,
          last_error: null,
          created_at: created,
          updated_at: created,
        })
        .execute()
      for (let attempt = 1; attempt <= retry.attempts && !closed; attempt++) {
        let error: string | null = null
        try {
          await send()
        } catch (err) {
          error = (err as Error).message.slice(0, 500)
        }
        const last = error === null || attempt === retry.attempts
        await deps.db
          .updateTable('approval_notifications')
          .set({
            attempts: attempt,
            last_error: error,
            status: error === null ? 'delivered' : last ? 'failed' : 'pending',
            updated_at: deps.clock.now().getTime(),
          })
          .where('id', '=', id)
          .execute()
        if (error === null) {
          await deps.audit.append({
            type: 'approval.notified',
            actor: { type: 'system', id: 'deputy' },
            target: { type: 'approval', id: request.id },
            data: { channel, target: target.slice(0, 200), attempts: attempt },
          })
          return
        }
        if (last) {
          deps.logger.warn(
            { approval: request.id, channel, error },
            'approval notice not delivered',
          )
          return
        }
        await sleep(retry.baseDelayMs * 2 ** (attempt - 1))
      }
    })()
      .catch((err: unknown) => deps.logger.error({ err }, 'approval notice failed'))
      .finally(() => inFlight.delete(task))
    inFlight.add(task)
  }

  return {
    /** A new request: tells the person through each channel they chose (the inbox needs nothing). */
    async requested(notice: ApprovalNotice): Promise<void> {
      const chosen = await deps.db
        .selectFrom('notification_preferences')
        .select(['channel', 'settings'])
        .where('user_id', '=', notice.person.id)
        .execute()
      for (const preference of chosen) {
        const channel = deps.channels.find((c) => c.name === preference.channel)
        if (!channel) continue
        const settings = JSON.parse(preference.settings) as Record<string, unknown>
        deliver(notice.request, channel.name, channel.target(settings, notice.person), () =>
          channel.send(notice, settings),
        )
      }
    },

    /** A decision: in ping mode, tells the client its token is ready (CIBA §10.2). */
    async decided(request: ApprovalRequest, endpoint: string | null): Promise<void> {
      if (request.deliveryMode !== 'ping' || !endpoint) return
      const credentials = await deps.approvals.pingCredentials(request.id)
      if (!credentials) return
      const host = new URL(endpoint).host
      deliver(request, 'ping', host, async () => {
        const answer = await safeFetch(endpoint, {
          ...deps.fetchOptions,
          post: {
            body: JSON.stringify({ auth_req_id: credentials.authReqId }),
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${credentials.token}`,
            },
          },
        })
        // CIBA §10.2: the client answers 204 (any 2xx is taken as received).
        if (answer.status < 200 || answer.status >= 300)
          throw new Error(`the notification endpoint answered ${answer.status}`)
      })
    },

    /** Resolves when no delivery is in flight (tests, shutdown). */
    async idle(): Promise<void> {
      while (inFlight.size > 0) await Promise.all([...inFlight])
    },

    /** Stops retrying; deliveries in flight end after their current attempt. */
    async close(): Promise<void> {
      closed = true
      for (const [timer, resolve] of sleeping) {
        clearTimeout(timer)
        resolve()
      }
      sleeping.clear()
    },
  }
}

export type ApprovalNotifier = ReturnType<typeof createApprovalNotifier>
