import type { ResolvedConfig } from '../config/load.js'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { emailChannel } from './channels/email.js'
import { webhookChannel } from './channels/webhook.js'
import type { NotificationChannel } from './notify.js'

// The notification channels a deployment offers, besides the inbox (which every person has):
// email when an SMTP server is configured, signed webhooks always. A deployment can add its own
// (CreateDeputyOptions.notificationChannels); one with a built-in's name replaces it.

/** The built-in channels this deployment's settings allow, with `extra` added or replacing. */
export function notificationChannels(
  deps: {
    config: Pick<
      ResolvedConfig,
      'issuer' | 'mode' | 'smtpUrl' | 'smtpFrom' | 'dangerouslyAllowHttpLoopbackNotifications'
    >
    sealer: Sealer
    clock: Clock
  },
  extra: readonly NotificationChannel[] = [],
): NotificationChannel[] {
  const { config } = deps
  const channels: NotificationChannel[] = []
  if (config.smtpUrl)
    channels.push(
      emailChannel({
        url: config.smtpUrl,
        from: config.smtpFrom ?? `deputy@${new URL(config.issuer).hostname}`,
        requireTls: config.mode === 'production',
      }),
    )
  channels.push(
    webhookChannel({
      sealer: deps.sealer,
      clock: deps.clock,
      fetchOptions: { allowHttpLoopback: config.dangerouslyAllowHttpLoopbackNotifications },
    }),
  )
  return [...channels.filter((c) => !extra.some((e) => e.name === c.name)), ...extra]
}
