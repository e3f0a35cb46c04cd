import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** A role as the console shows it (plain data). */
export interface RoleView {
  name: string
  description: string
  permissions: string[]
  /** How many people hold it. */
  holders: number
  createdAt: string
  /** The built-in admin role: it cannot be deleted and keeps deputy:admin. */
  builtIn: boolean
}

/** A permission as the console lists it. */
export interface PermissionView {
  name: string
  description: string
  /** The roles that grant it. */
  roles: string[]
  /** deputy:admin: it cannot be deleted. */
  builtIn: boolean
}

function roleHref(name: string, rest = ''): string {
  return `/admin/roles/${encodeURIComponent(name)}${rest}`
}

function people(count: number): string {
  return count === 0 ? 'nobody holds it' : count === 1 ? '1 person' : `${count} people`
}

function PermissionChoices(props: { permissions: PermissionView[]; checked: readonly string[] }) {
  return props.permissions.length === 0 ? (
    <p class="muted">No permissions exist yet. Add one below.</p>
  ) : (
    props.permissions.map((p) => (
      <label class="check">
        <input
          type="checkbox"
          name="permission"
          value={p.name}
          checked={props.checked.includes(p.name)}
        />
        {p.name}
      </label>
    ))
  )
}

export interface RolesPageProps {
  roles: RoleView[]
  permissions: PermissionView[]
  csrfToken: string
  notice?: string
}

/** Roles and permissions: the lists, and the forms that add a role or a permission. */
export function rolesPage(props: RolesPageProps): string {
  return consolePage(
    <ConsoleLayout title="Roles and permissions" section="roles" notice={props.notice}>
      <ul class="rows" aria-label="Roles">
        {props.roles.map((r) => (
          <li>
            <a href={roleHref(r.name)}>{r.name}</a> <span class="muted">({people(r.holders)})</span>
            {r.description ? <p>{r.description}</p> : null}
            <p class="muted">
              {r.permissions.length > 0 ? r.permissions.join(', ') : 'grants no permission'}
            </p>
          </li>
        ))}
      </ul>
      <h2>Add a role</h2>
      <form method="post" action="/admin/roles">
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="role-name">Name (letters, digits, : . _ -)</label>
          <input id="role-name" type="text" name="name" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="role-description">Description (optional)</label>
          <input id="role-description" type="text" name="description" autocomplete="off" />
        </div>
        <fieldset>
          <legend>Permissions it grants</legend>
          <PermissionChoices permissions={props.permissions} checked={[]} />
        </fieldset>
        <button type="submit">Add role</button>
      </form>
      <h2 id="permissions">Permissions</h2>
      {props.permissions.length === 0 ? (
        <p class="muted">No permissions exist yet.</p>
      ) : (
        <ul class="rows" aria-label="Permissions">
          {props.permissions.map((p) => (
            <li>
              <strong>{p.name}</strong>
              {p.description ? <span class="muted"> {p.description}</span> : null}
              <p class="muted">
                {p.roles.length > 0 ? `granted by ${p.roles.join(', ')}` : 'granted by no role'}
              </p>
              {p.builtIn || p.roles.length > 0 ? null : (
                <form
                  method="post"
                  action={`/admin/permissions/${encodeURIComponent(p.name)}/delete`}
                >
                  <Csrf token={props.csrfToken} />
                  <button type="submit" class="secondary inline">
                    Delete {p.name}
                  </button>
                </form>
              )}
            </li>
          ))}
        </ul>
      )}
      <p class="muted">A permission a role grants is deleted after it is taken from that role.</p>
      <h2>Add a permission</h2>
      <form method="post" action="/admin/permissions">
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="permission-name">Permission name (e.g. shop:refund)</label>
          <input id="permission-name" type="text" name="name" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="permission-description">What it allows (optional)</label>
          <input id="permission-description" type="text" name="description" autocomplete="off" />
        </div>
        <button type="submit" class="secondary">
          Add permission
        </button>
      </form>
    </ConsoleLayout>,
  )
}

export interface RolePageProps {
  role: RoleView
  permissions: PermissionView[]
  csrfToken: string
  notice?: string
}

/** One role: its description and permissions, the forms that change them, and delete. */
export function rolePage(props: RolePageProps): string {
  const r = props.role
  return consolePage(
    <ConsoleLayout title={`Role ${r.name}`} section="roles" notice={props.notice}>
      <dl>
        <dt>Held by</dt>
        <dd>{people(r.holders)}</dd>
        <dt>Permissions</dt>
        <dd>{r.permissions.length > 0 ? r.permissions.join(', ') : 'none'}</dd>
        <dt>Since</dt>
        <dd>
          <Time iso={r.createdAt} />
        </dd>
      </dl>
      <h2>Description</h2>
      <form method="post" action={roleHref(r.name, '/description')}>
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="description">What the role is for</label>
          <input
            id="description"
            type="text"
            name="description"
            value={r.description}
            autocomplete="off"
          />
        </div>
        <button type="submit" class="secondary">
          Save description
        </button>
      </form>
      <h2>Permissions</h2>
      <form method="post" action={roleHref(r.name, '/permissions')}>
        <Csrf token={props.csrfToken} />
        <fieldset>
          <legend>Permissions it grants</legend>
          <PermissionChoices permissions={props.permissions} checked={r.permissions} />
        </fieldset>
        {r.builtIn ? <p class="muted">The built-in admin role always keeps deputy:admin.</p> : null}
        <button type="submit" class="secondary">
          Save permissions
        </button>
      </form>
      <div class="actions">
        {r.builtIn ? null : (
          <a class="button inline" href={roleHref(r.name, '/delete')}>
            Delete…
          </a>
        )}
      </div>
      <p>
        <a href="/admin/roles">All roles</a>
      </p>
    </ConsoleLayout>,
  )
}

/** Asks before a role is deleted: nothing is removed until this form is sent. */
export function deleteRolePage(props: { role: RoleView; csrfToken: string }): string {
  const r = props.role
  return consolePage(
    <ConsoleLayout title={`Delete role ${r.name}?`} section="roles">
      <p>
        {r.holders === 0 ? (
          <>Nobody holds {r.name}.</>
        ) : (
          <>
            <strong>{people(r.holders)}</strong> {r.holders === 1 ? 'holds' : 'hold'} {r.name} and
            will lose it
            {r.permissions.length > 0 ? ` and what it grants (${r.permissions.join(', ')})` : ''}.
          </>
        )}{' '}
        Deleting a role cannot be undone.
      </p>
      <div class="actions">
        <form method="post" action={roleHref(r.name, '/delete')}>
          <Csrf token={props.csrfToken} />
          <input type="hidden" name="confirm" value="delete" />
          <button type="submit" class="danger inline">
            Delete {r.name}
          </button>
        </form>
        <a class="button inline" href={roleHref(r.name)}>
          Keep it
        </a>
      </div>
    </ConsoleLayout>,
  )
}
