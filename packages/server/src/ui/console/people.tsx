import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** A person as the console shows them (plain data). */
export interface PersonView {
  id: string
  email: string
  name: string
  status: 'active' | 'disabled'
  roles: string[]
  permissions: string[]
  claims: Record<string, unknown>
  createdAt: string
}

export interface PeoplePageProps {
  people: PersonView[]
  /** How many there are before the search. */
  total: number
  query: string
  roles: string[]
  csrfToken: string
  notice?: string
}

function RoleChoices(props: { roles: string[]; checked: readonly string[] }) {
  return props.roles.length === 0 ? (
    <p class="muted">No roles exist yet.</p>
  ) : (
    <>
      {props.roles.map((role) => (
        <label class="check">
          <input type="checkbox" name="role" value={role} checked={props.checked.includes(role)} />
          {role}
        </label>
      ))}
    </>
  )
}

/** People: search, the list, and a form to add someone. */
export function peoplePage(props: PeoplePageProps): string {
  return consolePage(
    <ConsoleLayout title="People" section="people" notice={props.notice}>
      <form method="get" action="/admin/people" aria-label="Search people">
        <div class="field">
          <label for="q">Search by name or email</label>
          <input id="q" type="search" name="q" value={props.query} />
        </div>
        <div class="actions">
          <button type="submit" class="secondary inline">
            Search
          </button>
        </div>
      </form>
      {props.total === 0 ? (
        <p class="muted">Nobody has an account yet. Add the first person below.</p>
      ) : props.people.length === 0 ? (
        <p class="muted">Nobody matches “{props.query}”.</p>
      ) : (
        <ul class="rows" aria-label="People">
          {props.people.map((p) => (
            <li>
              <a href={`/admin/people/${encodeURIComponent(p.id)}`}>{p.name}</a>{' '}
              <span class="muted">{p.email}</span>
              {p.status === 'disabled' ? <span class="badge">disabled</span> : null}
              <p class="muted">{p.roles.length > 0 ? p.roles.join(', ') : 'no roles'}</p>
            </li>
          ))}
        </ul>
      )}
      <h2>Add a person</h2>
      <form method="post" action="/admin/people">
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="new-email">Email</label>
          <input id="new-email" type="email" name="email" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="new-name">Name</label>
          <input id="new-name" type="text" name="name" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="new-password">
            Password (optional: without one they sign in with a provider)
          </label>
          <input id="new-password" type="password" name="password" autocomplete="new-password" />
        </div>
        <fieldset>
          <legend>Roles</legend>
          <RoleChoices roles={props.roles} checked={[]} />
        </fieldset>
        <button type="submit">Add person</button>
      </form>
    </ConsoleLayout>,
  )
}

/** A connected account of the person, as listed (read-only; never a token). */
export interface ConnectionView {
  provider: string
  accountLabel: string | null
  status: 'active' | 'needs_reconnect'
  lastUsedAt: string | null
}

export interface PersonPageProps {
  person: PersonView
  connections: ConnectionView[]
  roles: string[]
  csrfToken: string
  notice?: string
}

/** One person: status, roles, claims, and the forms that change them. */
export function personPage(props: PersonPageProps): string {
  const p = props.person
  const base = `/admin/people/${encodeURIComponent(p.id)}`
  const disabled = p.status === 'disabled'
  return consolePage(
    <ConsoleLayout title={p.name} section="people" notice={props.notice}>
      <dl>
        <dt>Email</dt>
        <dd>{p.email}</dd>
        <dt>Status</dt>
        <dd>{disabled ? 'disabled: cannot sign in' : 'active'}</dd>
        <dt>Permissions</dt>
        <dd>{p.permissions.length > 0 ? p.permissions.join(', ') : 'none'}</dd>
        <dt>Since</dt>
        <dd>
          <Time iso={p.createdAt} />
        </dd>
        <dt>Id</dt>
        <dd>
          <code>{p.id}</code>
        </dd>
      </dl>
      <form method="post" action={`${base}/status`} class="actions">
        <Csrf token={props.csrfToken} />
        <input type="hidden" name="status" value={disabled ? 'active' : 'disabled'} />
        <button type="submit" class={disabled ? 'inline' : 'danger inline'}>
          {disabled ? 'Enable' : 'Disable (ends their sessions)'}
        </button>
      </form>
      <h2>Roles</h2>
      <form method="post" action={`${base}/roles`}>
        <Csrf token={props.csrfToken} />
        <fieldset>
          <legend>Roles held</legend>
          <RoleChoices roles={props.roles} checked={p.roles} />
        </fieldset>
        <button type="submit" class="secondary">
          Save roles
        </button>
      </form>
      <h2>Custom claims</h2>
      <form method="post" action={`${base}/claims`}>
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="claims">Claims (a JSON object, carried in their tokens)</label>
          <textarea id="claims" name="claims" spellcheck={false}>
            {JSON.stringify(p.claims, null, 2)}
          </textarea>
        </div>
        <button type="submit" class="secondary">
          Save claims
        </button>
      </form>
      <h2>Connected accounts</h2>
      {props.connections.length === 0 ? (
        <p class="muted">No connected accounts.</p>
      ) : (
        <ul class="rows" aria-label="Connected accounts">
          {props.connections.map((k) => (
            <li>
              <strong>{k.provider}</strong> {k.accountLabel ?? ''}
              {k.status === 'needs_reconnect' ? (
                <span class="badge">needs reconnecting</span>
              ) : null}
              <p class="muted">
                {k.lastUsedAt ? (
                  <>
                    last used <Time iso={k.lastUsedAt} />
                  </>
                ) : (
                  'not used yet'
                )}
              </p>
            </li>
          ))}
        </ul>
      )}
      <p>
        <a href={`/admin/audit?person=${encodeURIComponent(p.id)}`}>Their audit trail</a> ·{' '}
        <a href="/admin/people">All people</a>
      </p>
    </ConsoleLayout>,
  )
}
