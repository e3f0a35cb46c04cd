import { PASSKEY_SCRIPT_PATHS } from './assets.js'
import { Layout, renderPage } from './layout.js'

export interface LoginPageProps {
  csrfToken: string
  returnTo: string
  email?: string
  /** One line shown above the form: a refusal or a notice. */
  message?: { kind: 'error' | 'notice'; text: string }
  /** Upstream providers a person may sign in with, a "Sign in with …" link each. */
  providers?: readonly { name: string; displayName: string }[]
  /**
   * The page confirms a signed-in person (a high-risk approval): the passkey button reads "Use a
   * passkey" rather than "Sign in with a passkey".
   */
  confirming?: boolean
}

/**
 * Where a "Sign in with …" link goes: `/login/<provider>`, carrying `return_to`. Links, not
 * forms: Chromium checks a form's CSP `form-action` on every redirect after it (CSP3 §6.3.1.2),
 * and this one goes to the provider; the flow's state is bound to the browser by a cookie.
 */
export function providerSignInHref(provider: string, returnTo: string): string {
  return `/login/${encodeURIComponent(provider)}?return_to=${encodeURIComponent(returnTo)}`
}

/**
 * The sign-in form, a passkey button (shown by the passkey script where the browser has WebAuthn;
 * the form itself runs no script), then a link per sign-in provider.
 */
export function LoginPage(props: LoginPageProps) {
  return (
    <Layout title="Sign in" scripts={PASSKEY_SCRIPT_PATHS}>
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
      <section class="passkey" aria-label="Passkey" hidden>
        <button type="button" id="passkey-sign-in" class="secondary">
          {props.confirming ? 'Use a passkey' : 'Sign in with a passkey'}
        </button>
        <p id="passkey-status" class="alert error" role="alert" hidden />
      </section>
      {props.providers && props.providers.length > 0 ? (
        <nav class="providers" aria-label="Other ways to sign in">
          {props.providers.map((p) => (
            <a class="button" href={providerSignInHref(p.name, props.returnTo)}>
              {`Sign in with ${p.displayName}`}
            </a>
          ))}
        </nav>
      ) : null}
    </Layout>
  )
}

/** The login page as a complete HTML document. */
export function loginPage(props: LoginPageProps): string {
  return renderPage(<LoginPage {...props} />)
}
