import { Layout, renderPage } from './layout.js'
import { PersonNav } from './person-nav.js'

/** The person the page is about, as it shows them (pages take plain data, not domain objects). */
export interface AccountPerson {
  name: string
  email: string
  roles: readonly string[]
}

/** One session as the page lists it (identity/sessions.ts `SessionEntry`). */
export interface AccountSession {
  handle: string
  /** ISO times. */
  startedAt: string
  lastSeenAt: string
  signedInWith: string
  device: string | null
}

/** One line at the top: what just happened, or why it did not. */
export interface AccountNotice {
  kind: 'error' | 'notice'
  text: string
}

export interface AccountPageProps {
  user: AccountPerson
  csrfToken: string
  sessions: readonly AccountSession[]
  /** The handle of the session this page was asked for with ("this device"). */
  currentHandle: string
  /** True for a person holding deputy:admin: the page links to the console. */
  isAdmin: boolean
  notice?: AccountNotice
  /** The name to show in the form (what was typed, after a refused change). */
  name?: string
}

function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

function methodWords(signedInWith: string): string {
  if (signedInWith === 'password') return 'with a password'
  if (signedInWith === 'passkey') return 'with a passkey'
  if (signedInWith.startsWith('provider:')) return `with ${signedInWith.slice('provider:'.length)}`
  return signedInWith
}

function SessionItem(props: { s: AccountSession; current: boolean; csrfToken: string }) {
  const { s } = props
  const device = s.device ?? 'A browser Deputy did not record'
  return (
    <li data-session={s.handle}>
      <p>
        <strong>{device}</strong>
        {props.current ? <span class="tag">This device</span> : null}
        <br />
        <span class="muted">
          Signed in {methodWords(s.signedInWith)}{' '}
          <time datetime={s.startedAt}>{formatTime(s.startedAt)}</time>
          {' · '}last seen <time datetime={s.lastSeenAt}>{formatTime(s.lastSeenAt)}</time>
        </span>
      </p>
      {/* This device signs out through /logout like everywhere else; the others by handle. */}
      {props.current ? (
        <form method="post" action="/logout">
          <input type="hidden" name="csrf_token" value={props.csrfToken} />
          <button type="submit" class="secondary">
            Sign out of this device
          </button>
        </form>
      ) : (
        <form method="post" action="/account/sessions/sign-out">
          <input type="hidden" name="csrf_token" value={props.csrfToken} />
          <input type="hidden" name="session" value={s.handle} />
          <button type="submit" class="secondary">
            {`Sign out ${device}, since ${formatTime(s.startedAt)}`}
          </button>
        </form>
      )}
    </li>
  )
}

/** The signed-in person's own page: who they are, where they are signed in, and the way out. */
export function AccountPage(props: AccountPageProps) {
  const { user } = props
  const others = props.sessions.filter((s) => s.handle !== props.currentHandle).length
  return (
    <Layout title="Your account" nav={<PersonNav current="account" />}>
      <h1>Your account</h1>
      {props.notice ? (
        <p
          class={`alert ${props.notice.kind}`}
          role={props.notice.kind === 'error' ? 'alert' : 'status'}
        >
          {props.notice.text}
        </p>
      ) : null}
      <dl>
        <dt>Name</dt>
        <dd>{user.name}</dd>
        <dt>Email</dt>
        <dd>{user.email}</dd>
        <dt>Roles</dt>
        <dd>{user.roles.length > 0 ? user.roles.join(', ') : 'none'}</dd>
      </dl>
      <form method="post" action="/account/profile" id="profile">
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        <div class="field">
          <label for="name">Your name, as Deputy shows it to you and to apps you allow</label>
          <input
            id="name"
            name="name"
            type="text"
            autocomplete="name"
            maxlength={200}
            required
            value={props.name ?? user.name}
          />
        </div>
        <button type="submit">Save name</button>
      </form>
      {props.isAdmin ? (
        <p class="console-link">
          <a href="/admin">Open the console</a>{' '}
          <span class="muted">(you are an administrator of this Deputy)</span>
        </p>
      ) : null}
      <h2>Where you are signed in</h2>
      <ul class="sessions" id="sessions">
        {props.sessions.map((s) => (
          <SessionItem
            s={s}
            current={s.handle === props.currentHandle}
            csrfToken={props.csrfToken}
          />
        ))}
      </ul>
      {others > 0 ? (
        <form method="post" action="/account/sessions/sign-out-others">
          <input type="hidden" name="csrf_token" value={props.csrfToken} />
          <button type="submit">Sign out everywhere else</button>
        </form>
      ) : (
        <p class="muted">You are signed in only here.</p>
      )}
    </Layout>
  )
}

/** The account page as a complete HTML document. */
export function accountPage(props: AccountPageProps): string {
  return renderPage(<AccountPage {...props} />)
}
