import { type Context, Hono } from 'hono'
import type { Actor, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { signInHref } from '../identity/return-to.js'
import { type CurrentSession, readSession, type SessionDeps } from '../identity/sessions.js'
import type { Sealer } from '../keys/types.js'
import { FormError, readForm } from '../lib/form.js'
import { randomToken, safeEqual } from '../lib/random.js'
import { notificationsPage } from '../ui/notifications-page.js'
import { webhookSecretContext } from './channels/webhook.js'
import type { NotificationChannel } from './notify.js'

// Each person picks how they hear about approval requests (issue 11 §4), on their account's
// notifications page: email to their address, a signed webhook to a URL they own. The choices
// are rows of notification_preferences; a webhook's signing secret is made by Deputy, sealed
// there, and shown to the person once.

/** What the notifications page reads and writes. */
export interface PreferencesDeps extends SessionDeps {
  config: Pick<ResolvedConfig, 'sessionTtlSeconds' | 'dangerouslyAllowHttpLoopbackNotifications'>
  sealer: Sealer
  audit: AuditLog
  /** The channels this deployment offers (approvals/channels.ts). */
  channels: readonly Pick<NotificationChannel, 'name'>[]
}

const PATH = '/account/notifications'

/** A webhook URL Deputy will post to: https (http only to loopback in development), no secrets. */
function webhookUrlProblem(value: string, allowHttpLoopback: boolean): string | null {
  if (value.length > 2048) return 'The webhook URL is too long.'
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'The webhook URL is not a URL.'
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowHttpLoopback && loopback))
    return 'The webhook URL must start with https://.'
  if (url.username || url.password) return 'The webhook URL must not hold a user name or password.'
  if (url.hash) return 'The webhook URL must not have a #fragment.'
  return null
}

/** The notifications page and its form. */
export function createPreferencesRoutes(deps: PreferencesDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const db = deps.db
  const emailAvailable = deps.channels.some((c) => c.name === 'email')

  async function current(userId: string) {
    const rows = await db
      .selectFrom('notification_preferences')
      .select(['channel', 'settings'])
      .where('user_id', '=', userId)
      .execute()
    const settings = (channel: string) => {
      const row = rows.find((r) => r.channel === channel)
      return row ? (JSON.parse(row.settings) as Record<string, unknown>) : undefined
    }
    const webhook = settings('webhook')
    return {
      email: settings('email') !== undefined,
      webhookUrl: typeof webhook?.url === 'string' ? webhook.url : null,
    }
  }

  async function put(userId: string, channel: string, settings: Record<string, unknown> | null) {
    if (settings === null) {
      await db
        .deleteFrom('notification_preferences')
        .where('user_id', '=', userId)
        .where('channel', '=', channel)
        .execute()
      return
    }
    const now = deps.clock.now().getTime()
    const json = JSON.stringify(settings)
    await db
      .insertInto('notification_preferences')
      .values({ user_id: userId, channel, settings: json, created_at: now, updated_at: now })
      .onConflict((oc) =>
        oc.columns(['user_id', 'channel']).doUpdateSet({ settings: json, updated_at: now }),
      )
      .execute()
  }

  async function render(
    c: Context<AppEnv>,
    session: CurrentSession,
    status = 200,
    extra: { newWebhookSecret?: string; notice?: { kind: 'error' | 'notice'; text: string } } = {},
  ) {
    return c.html(
      notificationsPage({
        csrfToken: session.csrfToken,
        personEmail: session.user.email,
        emailAvailable,
        ...(await current(session.user.id)),
        ...extra,
      }),
      status as 200,
      { 'Cache-Control': 'no-store' },
    )
  }

  app.get(PATH, async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return c.redirect(signInHref(PATH), 303)
    return render(c, session)
  })

  app.post(PATH, async (c) => {
    let form: Awaited<ReturnType<typeof readForm>>
    try {
      form = await readForm(c.req)
    } catch (err) {
      if (!(err instanceof FormError)) throw err
      return c.text('This address accepts only a submitted web form.', 400)
    }
    const session = await readSession(deps, c.req.raw)
    if (!session) return c.redirect(signInHref(PATH), 303)
    const sent = form.get('csrf_token')
    if (!sent || !safeEqual(sent, session.csrfToken))
      return render(c, session, 403, {
        notice: {
          kind: 'error',
          text: 'This form has expired or did not come from Deputy. Nothing was saved; try again.',
        },
      })
    const userId = session.user.id
    const actor: Actor = { type: 'user', id: userId, label: session.user.email }
    const before = await current(userId)
    const changed: { channel: string; on: boolean; target?: string }[] = []

    const webhookUrl = form.get('webhook_url')?.trim() ?? ''
    if (webhookUrl) {
      const problem = webhookUrlProblem(
        webhookUrl,
        deps.config.dangerouslyAllowHttpLoopbackNotifications,
      )
      if (problem) return render(c, session, 400, { notice: { kind: 'error', text: problem } })
    }
    const wantsEmail = emailAvailable && form.get('email') === 'on'
    if (wantsEmail !== before.email) {
      await put(userId, 'email', wantsEmail ? {} : null)
      changed.push({ channel: 'email', on: wantsEmail })
    }
    let newWebhookSecret: string | undefined
    if (!webhookUrl && before.webhookUrl) {
      await put(userId, 'webhook', null)
      changed.push({ channel: 'webhook', on: false })
    } else if (
      webhookUrl &&
      (webhookUrl !== before.webhookUrl || form.get('new_secret') === 'on')
    ) {
      newWebhookSecret = `whsec_${randomToken(32)}`
      await put(userId, 'webhook', {
        url: webhookUrl,
        secret_sealed: deps.sealer.seal(newWebhookSecret, webhookSecretContext(userId)),
      })
      changed.push({ channel: 'webhook', on: true, target: new URL(webhookUrl).host })
    }
    for (const change of changed)
      await deps.audit.append({
        type: 'notification-preference.changed',
        actor,
        target: { type: 'user', id: userId },
        requestId: c.get('requestId') ?? null,
        data: change,
      })
    return render(c, session, 200, {
      ...(newWebhookSecret && { newWebhookSecret }),
      notice: { kind: 'notice', text: changed.length > 0 ? 'Saved.' : 'Nothing changed.' },
    })
  })

  return app
}
