import { createHmac } from 'node:crypto'
import type { Sealer } from '../../keys/types.js'
import type { Clock } from '../../lib/clock.js'
import { type SafeFetchOptions, safeFetch } from '../../lib/safe-fetch.js'
import type { ApprovalNotice, NotificationChannel } from '../notify.js'

// Signed webhooks: a JSON POST to the URL a person chose, signed with HMAC-SHA256 over the
// timestamp and the body with a secret Deputy made for that person (sealed in their preference,
// shown to them once). Sent through the SSRF-guarded fetch; the notifier retries with backoff and
// logs each delivery. The format is documented in docs/approvals.md.

/** The header with the Unix time (seconds) the signature covers. */
export const TIMESTAMP_HEADER = 'deputy-webhook-timestamp'
/** The header with the signature: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export const SIGNATURE_HEADER = 'deputy-webhook-signature'
/** The header naming the event. */
export const EVENT_HEADER = 'deputy-webhook-event'

/** Where a person's webhook secret is sealed (associated data: it opens only for them). */
export function webhookSecretContext(userId: string): string {
  return `notification_preferences:${userId}:webhook`
}

/** The signature of one delivery. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** The body of a webhook for a new request (snake_case, as Deputy's other wire formats). */
export function webhookBody(notice: ApprovalNotice): string {
  const { request } = notice
  return JSON.stringify({
    type: 'approval.requested',
    approval: {
      id: request.id,
      link: notice.link,
      client: { id: request.clientId, name: notice.clientName },
      person: { id: notice.person.id, email: notice.person.email },
      resource: request.resource,
      scopes: request.scopes,
      binding_message: request.bindingMessage,
      summary: notice.summary,
      authorization_details: request.authorizationDetails,
      created_at: new Date(request.createdAt).toISOString(),
      expires_at: new Date(request.expiresAt).toISOString(),
    },
  })
}

export interface WebhookChannelDeps {
  sealer: Sealer
  clock: Clock
  fetchOptions: Pick<SafeFetchOptions, 'allowHttpLoopback' | 'timeoutMs'>
}

/** The `webhook` channel; a person's settings are `{ "url": "…", "secret_sealed": "…" }`. */
export function webhookChannel(deps: WebhookChannelDeps): NotificationChannel {
  return {
    name: 'webhook',
    target(settings) {
      try {
        return new URL(String(settings.url)).host
      } catch {
        return 'invalid URL'
      }
    },
    async send(notice, settings) {
      const url = String(settings.url)
      const secret = deps.sealer.open(
        String(settings.secret_sealed),
        webhookSecretContext(notice.person.id),
      )
      const body = webhookBody(notice)
      // A fresh timestamp on every attempt, so a receiver can refuse old deliveries (replays).
      const timestamp = String(Math.floor(deps.clock.now().getTime() / 1000))
      const answer = await safeFetch(url, {
        ...deps.fetchOptions,
        post: {
          body,
          headers: {
            'content-type': 'application/json',
            [EVENT_HEADER]: 'approval.requested',
            [TIMESTAMP_HEADER]: timestamp,
            [SIGNATURE_HEADER]: webhookSignature(secret, timestamp, body),
          },
        },
      })
      if (answer.status < 200 || answer.status >= 300)
        throw new Error(`the webhook answered ${answer.status}`)
    },
  }
}
