import { PASSKEY_SCRIPT_PATHS } from './assets.js'
import { Layout, renderPage } from './layout.js'
import { PersonNav } from './person-nav.js'

/** A passkey as the page shows it. */
export interface PasskeyEntry {
  credentialId: string
  name: string
  /** ISO times. */
  createdAt: string
  lastUsedAt: string | null
}

export interface SecurityPageProps {
  passkeys: readonly PasskeyEntry[]
  csrfToken: string
  /** False for a person who signs in only with a provider or a passkey: no password to change. */
  hasPassword: boolean
  /** One line at the top: what just happened, or why it did not. */
  notice?: { kind: 'error' | 'notice'; text: string }
}

function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

/** "Security": the person's passkeys (name, added, last used, remove) and a form to add one. */
export function SecurityPage(props: SecurityPageProps) {
  return (
    <Layout title="Security" scripts={PASSKEY_SCRIPT_PATHS} nav={<PersonNav current="security" />}>
      <h1>Security</h1>
      {props.notice ? (
        <p
          class={`alert ${props.notice.kind}`}
          role={props.notice.kind === 'error' ? 'alert' : 'status'}
        >
          {props.notice.text}
        </p>
      ) : null}
      <h2>Passkeys</h2>
      <p class="muted">
        A passkey signs you in with your device’s screen lock or a security key instead of your
        password, and confirms it is you before a high-risk approval.
      </p>
      {props.passkeys.length === 0 ? (
        <p class="muted" id="no-passkeys">
          You have no passkeys yet.
        </p>
      ) : (
        <ul class="passkeys" id="passkeys">
          {props.passkeys.map((p) => (
            <li data-passkey={p.credentialId}>
              <p>
                <strong>{p.name}</strong>
                <br />
                <span class="muted">
                  Added <time datetime={p.createdAt}>{formatTime(p.createdAt)}</time>
                  {' · '}
                  {p.lastUsedAt ? (
                    <>
                      last used <time datetime={p.lastUsedAt}>{formatTime(p.lastUsedAt)}</time>
                    </>
                  ) : (
                    'never used'
                  )}
                </span>
              </p>
              <form method="post" action="/account/security/passkeys/remove">
                <input type="hidden" name="csrf_token" value={props.csrfToken} />
                <input type="hidden" name="credential_id" value={p.credentialId} />
                <button type="submit" class="secondary">
                  {`Remove ${p.name}`}
                </button>
              </form>
            </li>
          ))}
        </ul>
      )}
      <form id="passkey-register" hidden>
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        <div class="field">
          <label for="passkey-name">Name for the new passkey</label>
          <input
            id="passkey-name"
            name="name"
            type="text"
            maxlength={64}
            required
            placeholder="e.g. My phone"
          />
        </div>
        <button type="submit">Add a passkey</button>
      </form>
      <p id="passkey-register-status" class="alert error" role="alert" hidden />
      <p id="passkey-unsupported" class="muted">
        Adding a passkey needs a browser that supports passkeys, with JavaScript on.
      </p>
      <h2>Password</h2>
      {props.hasPassword ? (
        <form method="post" action="/account/security/password" id="password-change">
          <input type="hidden" name="csrf_token" value={props.csrfToken} />
          <div class="field">
            <label for="current-password">Current password</label>
            <input
              id="current-password"
              name="current_password"
              type="password"
              autocomplete="current-password"
              required
            />
          </div>
          <div class="field">
            <label for="new-password">New password (at least 10 characters)</label>
            <input
              id="new-password"
              name="new_password"
              type="password"
              autocomplete="new-password"
              minlength={10}
              required
            />
          </div>
          <div class="field">
            <label for="confirm-password">New password again</label>
            <input
              id="confirm-password"
              name="confirm_password"
              type="password"
              autocomplete="new-password"
              minlength={10}
              required
            />
          </div>
          <p class="muted">Changing it signs you out everywhere else.</p>
          <button type="submit">Change password</button>
        </form>
      ) : (
        <p class="muted" id="no-password">
          You sign in without a password here, with a provider or a passkey.
        </p>
      )}
    </Layout>
  )
}

/** The security page as a complete HTML document. */
export function securityPage(props: SecurityPageProps): string {
  return renderPage(<SecurityPage {...props} />)
}
