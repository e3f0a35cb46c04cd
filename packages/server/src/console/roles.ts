import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import { ADMIN_PERMISSION, ADMIN_ROLE, type Role, type Roles } from '../identity/roles.js'
import type { SessionDeps } from '../identity/sessions.js'
import { DeputyError } from '../lib/errors.js'
import {
  deleteRolePage,
  type PermissionView,
  type RoleView,
  rolePage,
  rolesPage,
} from '../ui/console/roles.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/** What the role pages read and change: the same roles and permissions the admin API uses. */
export interface RolesConsoleDeps extends SessionDeps {
  roles: Pick<
    Roles,
    | 'list'
    | 'find'
    | 'add'
    | 'setDescription'
    | 'setPermissions'
    | 'remove'
    | 'holders'
    | 'listPermissions'
    | 'addPermission'
    | 'removePermission'
  >
}

const NOTICES: Record<string, string> = {
  created: 'Role added.',
  description: 'Description saved.',
  permissions: 'Permissions saved: everyone who holds the role has exactly these from now on.',
  deleted: 'Role deleted: the people who held it no longer have it.',
  'permission-created': 'Permission added.',
  'permission-deleted': 'Permission deleted.',
}

const PERMISSION = new Set(['permission'])

function view(role: Role, holders: Map<string, number>): RoleView {
  return {
    name: role.name,
    description: role.description,
    permissions: role.permissions,
    holders: holders.get(role.name) ?? 0,
    createdAt: role.createdAt,
    builtIn: role.name === ADMIN_ROLE,
  }
}

function rolePath(name: string, rest = ''): string {
  return `/admin/roles/${encodeURIComponent(name)}${rest}`
}

/** Roles and permissions (issue 15 §1): list, add, describe, grant, delete. */
export function registerRolePages(app: Hono<AppEnv>, deps: RolesConsoleDeps): void {
  const { roles } = deps
  const notice = (c: Context<AppEnv>) => NOTICES[c.req.query('done') ?? '']
  const permissionViews = async (): Promise<PermissionView[]> =>
    (await roles.listPermissions()).map((p) => ({
      name: p.name,
      description: p.description,
      roles: p.roles,
      builtIn: p.name === ADMIN_PERMISSION,
    }))
  const roleView = async (c: Context<AppEnv>): Promise<RoleView | undefined> => {
    const role = await roles.find(c.req.param('name') ?? '')
    return role ? view(role, await roles.holders()) : undefined
  }
  const back = (c: Context<AppEnv>) => rolePath(c.req.param('name') ?? '')

  app.get(
    '/admin/roles',
    consoleView(deps, async (c, admin) => {
      const [all, holders, permissions] = await Promise.all([
        roles.list(),
        roles.holders(),
        permissionViews(),
      ])
      return html(
        c,
        rolesPage({
          roles: all.map((r) => view(r, holders)),
          permissions,
          csrfToken: admin.session.csrfToken,
          notice: notice(c),
        }),
      )
    }),
  )

  app.post(
    '/admin/roles',
    consoleAction(
      deps,
      () => '/admin/roles',
      async (c, admin, form) => {
        const role = await roles.add(
          {
            name: form.get('name') ?? '',
            description: form.get('description') ?? '',
            permissions: form.all('permission'),
          },
          admin.actor,
        )
        return done(c, rolePath(role.name, '?done=created'))
      },
      PERMISSION,
    ),
  )

  app.get(
    '/admin/roles/:name',
    consoleView(deps, async (c, admin) => {
      const role = await roleView(c)
      if (!role) return c.notFound()
      return html(
        c,
        rolePage({
          role,
          permissions: await permissionViews(),
          csrfToken: admin.session.csrfToken,
          notice: notice(c),
        }),
      )
    }),
  )

  // Deleting asks first: this page holds the only form that deletes.
  app.get(
    '/admin/roles/:name/delete',
    consoleView(deps, async (c, admin) => {
      const role = await roleView(c)
      if (!role || role.builtIn) return c.notFound()
      return html(c, deleteRolePage({ role, csrfToken: admin.session.csrfToken }))
    }),
  )

  app.post(
    '/admin/roles/:name/description',
    consoleAction(deps, back, async (c, admin, form) => {
      const role = await roles.setDescription(
        c.req.param('name') ?? '',
        form.get('description') ?? '',
        admin.actor,
      )
      return done(c, rolePath(role.name, '?done=description'))
    }),
  )

  app.post(
    '/admin/roles/:name/permissions',
    consoleAction(
      deps,
      back,
      async (c, admin, form) => {
        const role = await roles.setPermissions(
          c.req.param('name') ?? '',
          form.all('permission'),
          admin.actor,
        )
        return done(c, rolePath(role.name, '?done=permissions'))
      },
      PERMISSION,
    ),
  )

  app.post(
    '/admin/roles/:name/delete',
    consoleAction(deps, back, async (c, admin, form) => {
      if (form.get('confirm') !== 'delete')
        throw new DeputyError('ERR_INVALID_INPUT', 'confirm the deletion on the page that asks')
      await roles.remove(c.req.param('name') ?? '', admin.actor)
      return done(c, '/admin/roles?done=deleted')
    }),
  )

  app.post(
    '/admin/permissions',
    consoleAction(
      deps,
      () => '/admin/roles',
      async (c, admin, form) => {
        await roles.addPermission(
          { name: form.get('name') ?? '', description: form.get('description') ?? '' },
          admin.actor,
        )
        return done(c, '/admin/roles?done=permission-created')
      },
    ),
  )

  app.post(
    '/admin/permissions/:name/delete',
    consoleAction(
      deps,
      () => '/admin/roles',
      async (c, admin) => {
        await roles.removePermission(c.req.param('name') ?? '', admin.actor)
        return done(c, '/admin/roles?done=permission-deleted')
      },
    ),
  )
}
