import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** A client as the console shows it (plain data). */
export interface ClientView {
  clientId: string
  name: string
  kind: 'registered' | 'dynamic' | 'metadata_document'
  status: 'active' | 'disabled'
  redirectUris: string[]
  grantTypes: string[]
  tokenEndpointAuthMethod: string
  allowedScopes: string[]
  createdAt: string
  expiresAt: string | null
}

/** How each kind of client came to be, in words. */
export const KIND_LABEL: Record<ClientView['kind'], string> = {
  registered: 'pre-registered',
  dynamic: 'dynamic registration',
  metadata_document: 'client ID metadata document',
}

function clientHref(clientId: string, rest = ''): string {
  return `/admin/clients/${encodeURIComponent(clientId)}${rest}`
}

/** Clients: every agent and app Deputy knows, with how it registered. */
export function clientsPage(props: { clients: ClientView[]; notice?: string }): string {
  return consolePage(
    <ConsoleLayout title="Clients" section="clients" notice={props.notice}>
      {props.clients.length === 0 ? (
        <p class="muted">
          No client is registered yet. Add one with <code>deputy clients add</code>, or let an agent
          register itself.
        </p>
      ) : (
        <ul class="rows" aria-label="Clients">
          {props.clients.map((c) => (
            <li>
              <a href={clientHref(c.clientId)}>{c.name}</a>{' '}
              <span class="muted">({KIND_LABEL[c.kind]})</span>
              {c.status === 'disabled' ? <span class="badge">disabled</span> : null}
              <p class="muted">
                <code>{c.clientId}</code>
              </p>
            </li>
          ))}
        </ul>
      )}
    </ConsoleLayout>,
  )
}

/** One client: its registration, and disable, enable or delete. */
export function clientPage(props: {
  client: ClientView
  csrfToken: string
  notice?: string
}): string {
  const c = props.client
  const disabled = c.status === 'disabled'
  const list = (values: string[]) => (values.length > 0 ? values.join(', ') : 'none')
  return consolePage(
    <ConsoleLayout title={c.name} section="clients" notice={props.notice}>
      <dl>
        <dt>Client id</dt>
        <dd>
          <code>{c.clientId}</code>
        </dd>
        <dt>Kind</dt>
        <dd>{KIND_LABEL[c.kind]}</dd>
        <dt>Status</dt>
        <dd>{disabled ? 'disabled: gets no tokens' : 'active'}</dd>
        <dt>Redirect URIs</dt>
        <dd>{list(c.redirectUris)}</dd>
        <dt>Grant types</dt>
        <dd>{list(c.grantTypes)}</dd>
        <dt>Authentication</dt>
        <dd>{c.tokenEndpointAuthMethod}</dd>
        <dt>Machine scopes</dt>
        <dd>{list(c.allowedScopes)}</dd>
        <dt>Since</dt>
        <dd>
          <Time iso={c.createdAt} />
        </dd>
        {c.expiresAt ? (
          <>
            <dt>Expires</dt>
            <dd>
              <Time iso={c.expiresAt} />
            </dd>
          </>
        ) : null}
      </dl>
      <div class="actions">
        <form method="post" action={clientHref(c.clientId, disabled ? '/enable' : '/disable')}>
          <Csrf token={props.csrfToken} />
          <button type="submit" class="secondary inline">
            {disabled ? 'Enable' : 'Disable (ends its grants)'}
          </button>
        </form>
        <a class="button inline" href={clientHref(c.clientId, '/delete')}>
          Delete…
        </a>
      </div>
      <p>
        <a href={`/admin/audit?agent=${encodeURIComponent(c.clientId)}`}>Its audit trail</a> ·{' '}
        <a href="/admin/clients">All clients</a>
      </p>
    </ConsoleLayout>,
  )
}

/** Asks before a client is deleted: nothing is removed until this form is sent. */
export function deleteClientPage(props: { client: ClientView; csrfToken: string }): string {
  const c = props.client
  return consolePage(
    <ConsoleLayout title={`Delete ${c.name}?`} section="clients">
      <p>
        Deleting <strong>{c.name}</strong> ends every grant and refresh token it holds and removes
        its registration. This cannot be undone.
      </p>
      <div class="actions">
        <form method="post" action={clientHref(c.clientId, '/delete')}>
          <Csrf token={props.csrfToken} />
          <input type="hidden" name="confirm" value="delete" />
          <button type="submit" class="danger inline">
            Delete {c.name}
          </button>
        </form>
        <a class="button inline" href={clientHref(c.clientId)}>
          Keep it
        </a>
      </div>
    </ConsoleLayout>,
  )
}
