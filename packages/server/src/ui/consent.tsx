import { Layout, renderPage } from './layout.js'

/** A scope as the consent page shows it: the sentence, with the scope name for the curious. */
export interface ScopeLine {
  scope: string
  sentence: string
}

export interface ConsentPageProps {
  clientName: string
  /** True for a client that registered itself or is known only by its metadata document. */
  selfRegistered: boolean
  resourceName: string
  resourceUri: string
  /** The person deciding, so a shared computer does not decide for the wrong account. */
  userEmail: string
  redirectHost: string
  /** The client_id's host when the redirect goes elsewhere. */
  otherClientHost: string | null
  loopbackOnly: boolean
  newScopes: ScopeLine[]
  alreadyGranted: ScopeLine[]
  /** RFC 9396 authorization details in words, with their JSON. */
  details: { sentence: string; json: string }[]
  /** The authorization request handle and the session's CSRF token, posted back with the answer. */
  handle: string
  csrfToken: string
}

function ScopeList(props: { scopes: ScopeLine[] }) {
  return (
    <ul class="scopes">
      {props.scopes.map((s) => (
        <li>
          {s.sentence} <span class="muted">({s.scope})</span>
        </li>
      ))}
    </ul>
  )
}

/**
 * The consent page: which agent, where the answer goes, and what it may do, in words (MCP
 * security considerations: client name, redirect host, scopes; RFC 9700 §4.7 CSRF token).
 */
export function ConsentPage(props: ConsentPageProps) {
  const stepUp = props.alreadyGranted.length > 0
  return (
    <Layout title={`Allow ${props.clientName}?`}>
      <h1>
        Allow <strong>{props.clientName}</strong> to act for you?
      </h1>
      <p>
        It asks for access to <strong>{props.resourceName}</strong>{' '}
        <span class="muted">({props.resourceUri})</span> as {props.userEmail}.
      </p>
      <p>
        After you decide, you return to <strong>{props.redirectHost}</strong>.
      </p>
      {props.otherClientHost ? (
        <p class="alert error" role="alert">
          This app is published at {props.otherClientHost}, but it returns to {props.redirectHost}.
          Allow only if you expected that.
        </p>
      ) : null}
      {props.loopbackOnly ? (
        <p class="alert error" role="alert">
          This app returns to a program on your own computer ({props.redirectHost}). Allow only if
          you started it yourself just now.
        </p>
      ) : null}
      {props.selfRegistered ? (
        <p class="muted">This app registered itself; Deputy has not checked who made it.</p>
      ) : null}
      {props.newScopes.length > 0 ? (
        <>
          <p>{stepUp ? 'It now also asks to:' : 'It will be able to:'}</p>
          <ScopeList scopes={props.newScopes} />
        </>
      ) : (
        <p>It asks for basic access only, with no specific permissions.</p>
      )}
      {props.details.length > 0 ? (
        <>
          <p>And exactly this:</p>
          <ul class="scopes">
            {props.details.map((d) => (
              <li>
                {d.sentence}
                <details>
                  <summary class="muted">as sent</summary>
                  <pre>{d.json}</pre>
                </details>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {stepUp ? (
        <>
          <p>You already allowed it to:</p>
          <ScopeList scopes={props.alreadyGranted} />
        </>
      ) : null}
      <p class="muted">
        You can revoke this at any time under <a href="/account/agents">Your agents</a>.
      </p>
      <form method="post" action="/authorize/consent">
        <input type="hidden" name="request" value={props.handle} />
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        <div class="field">
          <button type="submit" name="decision" value="allow">
            Allow
          </button>
        </div>
        <button type="submit" name="decision" value="deny" class="secondary">
          Deny
        </button>
      </form>
    </Layout>
  )
}

/** The consent page as a complete HTML document. */
export function consentPage(props: ConsentPageProps): string {
  return renderPage(<ConsentPage {...props} />)
}

/**
 * Sends the browser on to the app after sign-in when consent was already given. A plain redirect
 * would end a chain that began with the sign-in form's POST, and Chromium applies that page's
 * CSP `form-action 'self'` to every redirect of the chain (CSP3 §6.3.1.2); a refresh is not a
 * form submission, and the link covers browsers that ignore refreshes.
 */
export function ReturningPage(props: { clientName: string; href: string }) {
  return (
    <Layout title={`Returning to ${props.clientName}`}>
      <meta http-equiv="refresh" content={`0;url=${props.href}`} />
      <h1>Returning to {props.clientName}</h1>
      <p>You already allowed this app. Taking you back now.</p>
      <p>
        <a href={props.href}>Continue to {props.clientName}</a>
      </p>
    </Layout>
  )
}

/** The returning page as a complete HTML document. */
export function returningPage(props: { clientName: string; href: string }): string {
  return renderPage(<ReturningPage {...props} />)
}
