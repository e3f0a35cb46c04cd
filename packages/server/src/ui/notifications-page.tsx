import { Layout, renderPage } from './layout.js'
import { PersonNav } from './person-nav.js'

export interface NotificationsPageProps {
  csrfToken: string
  personEmail: string
  /** Email is offered only when the deployment has an SMTP server. */
  emailAvailable: boolean
  email: boolean
  webhookUrl: string | null
  /** A webhook signing secret just made: shown this once. */
  newWebhookSecret?: string
  notice?: { kind: 'error' | 'notice'; text: string }
}

/** The person's choice of how they hear about approval requests, beyond the inbox. */
export function NotificationsPage(props: NotificationsPageProps) {
  return (
    <Layout title="Notifications" nav={<PersonNav current="notifications" />}>
      <h1>Notifications</h1>
      {props.notice ? (
        <p
          class={`alert ${props.notice.kind}`}
          role={props.notice.kind === 'error' ? 'alert' : 'status'}
        >
          {props.notice.text}
        </p>
      ) : null}
      {props.newWebhookSecret ? (
        <div class="alert notice" role="status">
          <p>Your webhook signing secret, shown this once. Keep it with your receiver:</p>
          <pre id="webhook-secret">{props.newWebhookSecret}</pre>
        </div>
      ) : null}
      <p>
        Requests always wait in your <a href="/approvals">approvals inbox</a>. Deputy can also tell
        you when one arrives:
      </p>
      <form method="post" action="/account/notifications">
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        {props.emailAvailable ? (
          <div class="field">
            <label class="check">
              <input type="checkbox" name="email" value="on" checked={props.email} />
              Email me at {props.personEmail}
            </label>
          </div>
        ) : (
          <p class="muted">Email is not set up on this Deputy.</p>
        )}
        <div class="field">
          <label for="webhook_url">Webhook URL (signed POST; leave empty for none)</label>
          <input
            id="webhook_url"
            name="webhook_url"
            type="url"
            inputmode="url"
            placeholder="https://…"
            value={props.webhookUrl ?? ''}
          />
        </div>
        <div class="field">
          <label class="check">
            <input type="checkbox" name="new_secret" value="on" />
            Make a new webhook signing secret
          </label>
        </div>
        <button type="submit">Save</button>
      </form>
    </Layout>
  )
}

/** The notifications page as a complete HTML document. */
export function notificationsPage(props: NotificationsPageProps): string {
  return renderPage(<NotificationsPage {...props} />)
}
