import { Layout, renderPage } from './layout.js'
import { PersonNav } from './person-nav.js'

/** One connected account as the page shows it (plain data, never a token). */
export interface ConnectionEntry {
  provider: string
  providerName: string
  accountLabel: string | null
  scopes: string[]
  status: 'active' | 'needs_reconnect'
  /** ISO times. */
  createdAt: string
  lastUsedAt: string | null
}

/** A provider a person may connect. */
export interface ConnectableProvider {
  name: string
  displayName: string
}

export interface ConnectionsPageProps {
  connections: ConnectionEntry[]
  connectable: ConnectableProvider[]
  csrfToken: string
  notice?: string
}

function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

/** A form that starts the connect flow for one provider (POST, with the session's CSRF token). */
function ConnectForm(props: {
  provider: ConnectableProvider
  csrfToken: string
  label: string
  scopes?: string[]
}) {
  return (
    <form method="post" action={`/connect/${encodeURIComponent(props.provider.name)}`}>
      <input type="hidden" name="csrf_token" value={props.csrfToken} />
      {props.scopes && props.scopes.length > 0 ? (
        <input type="hidden" name="scope" value={props.scopes.join(' ')} />
      ) : null}
      <button type="submit">{props.label}</button>
    </form>
  )
}

/** "Connected accounts": what the person connected for their agents, and a way to disconnect. */
export function ConnectionsPage(props: ConnectionsPageProps) {
  const connected = new Set(props.connections.map((c) => c.provider))
  const others = props.connectable.filter((p) => !connected.has(p.name))
  return (
    <Layout title="Connected accounts" nav={<PersonNav current="connections" />}>
      <h1>Connected accounts</h1>
      {props.notice ? (
        <p class="alert notice" role="status">
          {props.notice}
        </p>
      ) : null}
      <p class="muted">
        Your agents can use these accounts for you. Their passwords and long-lived tokens stay in
        Deputy; an agent only ever gets a short-lived token.
      </p>
      {props.connections.length === 0 ? (
        <p class="muted">No account is connected.</p>
      ) : (
        props.connections.map((c) => (
          <section class="connection">
            <h2>{c.providerName}</h2>
            {c.accountLabel ? <p>{c.accountLabel}</p> : null}
            {c.status === 'needs_reconnect' ? (
              <p class="alert error" role="alert">
                {`${c.providerName} no longer accepts this connection: connect it again.`}
              </p>
            ) : null}
            <dl class="facts">
              <dt>Status</dt>
              <dd>{c.status === 'active' ? 'connected' : 'needs reconnecting'}</dd>
              <dt>Scopes</dt>
              <dd>{c.scopes.length > 0 ? c.scopes.join(' ') : 'none'}</dd>
              <dt>Connected</dt>
              <dd>
                <time datetime={c.createdAt}>{formatTime(c.createdAt)}</time>
              </dd>
              <dt>Last used</dt>
              <dd>
                {c.lastUsedAt ? (
                  <time datetime={c.lastUsedAt}>{formatTime(c.lastUsedAt)}</time>
                ) : (
                  'never'
                )}
              </dd>
            </dl>
            {c.status === 'needs_reconnect' ? (
              <ConnectForm
                provider={{ name: c.provider, displayName: c.providerName }}
                csrfToken={props.csrfToken}
                label={`Reconnect ${c.providerName}`}
                scopes={c.scopes}
              />
            ) : null}
            <form method="post" action="/account/connections/disconnect">
              <input type="hidden" name="csrf_token" value={props.csrfToken} />
              <input type="hidden" name="provider" value={c.provider} />
              <button type="submit" class="secondary">
                {`Disconnect ${c.providerName}`}
              </button>
            </form>
          </section>
        ))
      )}
      {others.length > 0 ? (
        <section>
          <h2>Connect an account</h2>
          {others.map((p) => (
            <ConnectForm
              provider={p}
              csrfToken={props.csrfToken}
              label={`Connect ${p.displayName}`}
            />
          ))}
        </section>
      ) : null}
    </Layout>
  )
}

/** The connections page as a complete HTML document. */
export function connectionsPage(props: ConnectionsPageProps): string {
  return renderPage(<ConnectionsPage {...props} />)
}

/** What a connect link asks the person to confirm: who asks, for which account, which scopes. */
export interface ConnectConfirmProps {
  provider: ConnectableProvider
  /** The agent or MCP server that handed out the link, when it named itself. */
  clientName: string | null
  scopes: string[]
  returnTo: string | null
  clientId: string | null
  csrfToken: string
}

/**
 * The page a connect link opens: nothing starts until the person presses the button (a POST
 * with the session's CSRF token), so a link planted on another site cannot connect an account.
 */
export function connectConfirmPage(props: ConnectConfirmProps): string {
  const { provider } = props
  return renderPage(
    <Layout title={`Connect ${provider.displayName}`}>
      <h1>{`Connect ${provider.displayName}`}</h1>
      <p>
        {props.clientName
          ? `${props.clientName} asks you to connect your ${provider.displayName} account, so it can act there for you.`
          : `Connect your ${provider.displayName} account, so your agents can act there for you.`}
      </p>
      {props.scopes.length > 0 ? (
        <p>
          Access asked for: <code>{props.scopes.join(' ')}</code>
        </p>
      ) : null}
      <form method="post" action={`/connect/${encodeURIComponent(provider.name)}`}>
        <input type="hidden" name="csrf_token" value={props.csrfToken} />
        <input type="hidden" name="scope" value={props.scopes.join(' ')} />
        {props.returnTo ? <input type="hidden" name="return_to" value={props.returnTo} /> : null}
        {props.clientId ? <input type="hidden" name="client_id" value={props.clientId} /> : null}
        <button type="submit">{`Continue to ${provider.displayName}`}</button>
      </form>
      <p>
        <a href="/account/connections">Not now</a>
      </p>
    </Layout>,
  )
}
