import { Layout, renderPage } from './layout.js'

/** The person the page is about, as it shows them (pages take plain data, not domain objects). */
export interface AccountPerson {
  name: string
  email: string
  roles: readonly string[]
}

/** The signed-in person's own page: who they are, the agents acting for them, and the way out. */
export function AccountPage(props: { user: AccountPerson; csrfToken: string }) {
  const { user } = props
  return (
    <Layout title="Your account">
      <h1>Your account</h1>
      <dl>
        <dt>Name</dt>
        <dd>{user.name}</dd>
        <dt>Email</dt>
        <dd>{user.email}</dd>
        <dt>Roles</dt>
        <dd>{user.roles.length > 0 ? user.roles.join(', ') : 'none'}</dd>
      </dl>
      <ul class="links">
        <li>
          <a href="/approvals">Approvals</a>{' '}
          <span class="muted">(requests from agents waiting for your answer)</span>
        </li>
        <li>
          <a href="/account/notifications">Notifications</a>{' '}
          <span class="muted">(how Deputy tells you about a request)</span>
        </li>
        <li>
          <a href="/account/agents">Your agents</a>{' '}
          <span class="muted">
            (the apps and agents you let act for you, and a way to stop each one)
          </span>
        </li>
        <li>
          <a href="/account/connections">Connected accounts</a>{' '}
          <span class="muted">
            (accounts at other services your agents may use for you, and a way to disconnect)
          </span>
        </li>
        <li>
          <a href="/account/security">Security</a>{' '}
          <span class="muted">(passkeys for signing in and confirming it is you)</span>
        </li>
      </ul>
      {/* Signing out changes state, so it is a form with the CSRF token, never a plain link. */}
      <form method="post" action="/logout">
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        <button type="submit" class="secondary">
          Sign out
        </button>
      </form>
    </Layout>
  )
}

/** The account page as a complete HTML document. */
export function accountPage(props: { user: AccountPerson; csrfToken: string }): string {
  return renderPage(<AccountPage {...props} />)
}
