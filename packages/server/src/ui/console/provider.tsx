import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** An upstream provider as the console lists it (never its secret). */
export interface ProviderView {
  name: string
  displayName: string
  type: string
  uses: string[]
  status: 'active' | 'disabled'
  scopes: string[]
}

/** One provider's settings as its page shows them: whether a secret is set, never the secret. */
export interface ProviderDetailView extends ProviderView {
  clientId: string
  hasClientSecret: boolean
  issuer: string | null
  endpoints: [string, string][]
  defaultRoles: string[]
  allowedClients: string[]
  createdAt: string
  updatedAt: string
}

/** A person's connected account at the provider (never a token). */
export interface ProviderConnectionView {
  userId: string
  person: string
  accountLabel: string | null
  status: 'active' | 'needs_reconnect'
  scopes: string[]
  lastUsedAt: string | null
  createdAt: string
}

function providerHref(name: string, rest = ''): string {
  return `/admin/providers/${encodeURIComponent(name)}${rest}`
}

/** Providers: the upstream services people sign in with or connect, each linking to its page. */
export function providersPage(props: { providers: ProviderView[] }): string {
  return consolePage(
    <ConsoleLayout title="Providers" section="providers">
      {props.providers.length === 0 ? (
        <p class="muted">
          No provider is configured. Add one with <code>deputy providers add</code>.
        </p>
      ) : (
        <ul class="rows" aria-label="Providers">
          {props.providers.map((p) => (
            <li>
              <a href={providerHref(p.name)}>{p.displayName}</a>{' '}
              <span class="muted">({p.type})</span>
              {p.status === 'disabled' ? <span class="badge">disabled</span> : null}
              <p class="muted">
                <code>{p.name}</code> · used for {p.uses.join(' and ')}
                {p.scopes.length > 0 ? ` · scopes ${p.scopes.join(' ')}` : ''}
              </p>
            </li>
          ))}
        </ul>
      )}
    </ConsoleLayout>,
  )
}

export interface ProviderPageProps {
  provider: ProviderDetailView
  connections: ProviderConnectionView[]
  /** True when there are more connections than the page lists. */
  moreConnections: boolean
  csrfToken: string
  notice?: string
}

/** One provider: its settings, enable/disable, the editable ones, and the accounts connected. */
export function providerPage(props: ProviderPageProps): string {
  const p = props.provider
  const disabled = p.status === 'disabled'
  const list = (values: string[]) => (values.length > 0 ? values.join(', ') : 'none')
  return consolePage(
    <ConsoleLayout title={p.displayName} section="providers" notice={props.notice}>
      <dl>
        <dt>Name</dt>
        <dd>
          <code>{p.name}</code>
        </dd>
        <dt>Type</dt>
        <dd>{p.type}</dd>
        <dt>Status</dt>
        <dd>{disabled ? 'disabled: no sign-in or connecting through it' : 'active'}</dd>
        <dt>Used for</dt>
        <dd>{p.uses.join(' and ')}</dd>
        <dt>Client id</dt>
        <dd>
          <code>{p.clientId}</code>
        </dd>
        <dt>Client secret</dt>
        <dd>{p.hasClientSecret ? 'set (sealed; never shown)' : 'none (PKCE only)'}</dd>
        {p.issuer ? (
          <>
            <dt>Issuer</dt>
            <dd>
              <code>{p.issuer}</code>
            </dd>
          </>
        ) : null}
        <dt>Scopes</dt>
        <dd>{p.scopes.length > 0 ? p.scopes.join(' ') : 'none'}</dd>
        <dt>Default roles</dt>
        <dd>{list(p.defaultRoles)}</dd>
        <dt>Clients allowed the token exchange</dt>
        <dd>{list(p.allowedClients)}</dd>
        {p.endpoints.map(([key, value]) => (
          <>
            <dt>{key.replaceAll('_', ' ')}</dt>
            <dd>
              <code>{value}</code>
            </dd>
          </>
        ))}
        <dt>Since</dt>
        <dd>
          <Time iso={p.createdAt} />, changed <Time iso={p.updatedAt} />
        </dd>
      </dl>
      <form method="post" action={providerHref(p.name, '/status')} class="actions">
        <Csrf token={props.csrfToken} />
        <input type="hidden" name="status" value={disabled ? 'active' : 'disabled'} />
        <button type="submit" class={disabled ? 'inline' : 'danger inline'}>
          {disabled ? 'Enable' : 'Disable (no sign-in or connecting)'}
        </button>
      </form>
      <h2 id="settings">Settings</h2>
      <form method="post" action={providerHref(p.name)} aria-labelledby="settings">
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="display-name">Display name (what the sign-in button says)</label>
          <input id="display-name" type="text" name="display_name" value={p.displayName} required />
        </div>
        <div class="field">
          <label for="client-id">Client id at the provider</label>
          <input
            id="client-id"
            type="text"
            name="client_id"
            value={p.clientId}
            required
            spellcheck={false}
          />
        </div>
        <div class="field">
          <label for="scopes">Scopes (separated by spaces)</label>
          <input
            id="scopes"
            type="text"
            name="scopes"
            value={p.scopes.join(' ')}
            spellcheck={false}
          />
        </div>
        <div class="field">
          <label for="client-secret">
            New client secret (leave empty to keep {p.hasClientSecret ? 'the one set' : 'none'})
          </label>
          <input
            id="client-secret"
            type="password"
            name="client_secret"
            autocomplete="off"
            spellcheck={false}
          />
        </div>
        {p.hasClientSecret ? (
          <div class="field">
            <label class="check">
              <input type="checkbox" name="remove_secret" value="1" /> Remove the client secret
              (PKCE only)
            </label>
          </div>
        ) : null}
        <button type="submit" class="secondary">
          Save settings
        </button>
      </form>
      <h2>Connected accounts</h2>
      {props.connections.length === 0 ? (
        <p class="muted">Nobody has connected an account at {p.displayName}.</p>
      ) : (
        <ul class="rows" aria-label="Connected accounts">
          {props.connections.map((k) => (
            <li>
              <a href={`/admin/people/${encodeURIComponent(k.userId)}`}>{k.person}</a>{' '}
              {k.accountLabel ? <span>as {k.accountLabel}</span> : null}
              {k.status === 'needs_reconnect' ? (
                <span class="badge">needs reconnecting</span>
              ) : null}
              <p class="muted">
                {k.scopes.length > 0 ? `scopes ${k.scopes.join(' ')} · ` : ''}connected{' '}
                <Time iso={k.createdAt} /> ·{' '}
                {k.lastUsedAt ? (
                  <>
                    last used <Time iso={k.lastUsedAt} />
                  </>
                ) : (
                  'not used yet'
                )}
              </p>
              <form
                method="post"
                action={providerHref(
                  p.name,
                  `/connections/${encodeURIComponent(k.userId)}/disconnect`,
                )}
                class="actions"
              >
                <Csrf token={props.csrfToken} />
                <button type="submit" class="danger inline" aria-label={`Disconnect ${k.person}`}>
                  Disconnect
                </button>
              </form>
            </li>
          ))}
        </ul>
      )}
      {props.moreConnections ? <p class="muted">Only the most recently used are listed.</p> : null}
      <p>
        Disconnecting revokes the tokens at the provider where it can, then deletes them; the person
        can connect again.{' '}
        <a href={`/admin/audit?type=connection.removed`}>Disconnections in the audit log</a> ·{' '}
        <a href="/admin/providers">All providers</a>
      </p>
    </ConsoleLayout>,
  )
}
