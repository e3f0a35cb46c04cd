import { Layout, renderPage } from './layout.js'

export interface LoginPageProps {
  csrfToken: string
  returnTo: string
  email?: string
  /** One line shown above the form: a refusal or a notice. */
  message?: { kind: 'error' | 'notice'; text: string }
}

/** The sign-in form. It posts to itself; nothing on it runs script. */
export function LoginPage(props: LoginPageProps) {
  return (
    <Layout title="Sign in">
      <h1>Sign in</h1>
      {props.message ? (
        <p
          class={`alert ${props.message.kind}`}
          role={props.message.kind === 'error' ? 'alert' : 'status'}
        >
          {props.message.text}
        </p>
      ) : null}
      <form method="post" action="/login">
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        <input type="hidden" name="return_to" value={props.returnTo} />
        <div class="field">
          <label for="email">Email</label>
          <input
            id="email"
            name="email"
            type="email"
            autocomplete="username"
            required
            autofocus={!props.email}
            value={props.email ?? ''}
          />
        </div>
        <div class="field">
          <label for="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autocomplete="current-password"
            required
            autofocus={!!props.email}
          />
        </div>
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  )
}

/** The login page as a complete HTML document. */
export function loginPage(props: LoginPageProps): string {
  return renderPage(<LoginPage {...props} />)
}
