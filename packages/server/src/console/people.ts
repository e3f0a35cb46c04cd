import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { Roles } from '../identity/roles.js'
import type { SessionDeps } from '../identity/sessions.js'
import type { User, Users } from '../identity/users.js'
import { DeputyError } from '../lib/errors.js'
import { hasNul } from '../lib/form.js'
import { jsonTextProblem } from '../lib/json-input.js'
import { type PersonView, peoplePage, personPage } from '../ui/console/people.js'
import type { Vault } from '../vault/types.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/** What the people pages read and change: the same users and roles the admin API uses. */
export interface PeopleConsoleDeps extends SessionDeps {
  users: Users
  roles: Pick<Roles, 'list'>
  /** The person's connected accounts, listed on their page. */
  vault: Pick<Vault, 'list'>
}

const NOTICES: Record<string, string> = {
  created: 'Person added.',
  disabled: 'Disabled: they can no longer sign in, and their sessions have ended.',
  enabled: 'Enabled: they can sign in again.',
  roles: 'Roles saved.',
  claims: 'Claims saved.',
}

const ROLE = new Set(['role'])

function view(user: User): PersonView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    status: user.status,
    roles: user.roles,
    permissions: user.permissions,
    claims: user.claims,
    createdAt: user.createdAt,
  }
}

function personPath(id: string): string {
  return `/admin/people/${encodeURIComponent(id)}`
}

/** People (issue 15 §1): search, a person's page, create, disable/enable, roles, claims. */
export function registerPeoplePages(app: Hono<AppEnv>, deps: PeopleConsoleDeps): void {
  const { users } = deps
  const roleNames = async () => (await deps.roles.list()).map((r) => r.name)
  const personOf = async (c: Context<AppEnv>): Promise<User> => {
    const id = c.req.param('id') ?? ''
    const user = await users.findById(id)
    if (!user) throw new DeputyError('ERR_NOT_FOUND', 'no person with that id')
    return user
  }
  const notice = (c: Context<AppEnv>) => NOTICES[c.req.query('done') ?? '']

  app.get(
    '/admin/people',
    consoleView(deps, async (c, admin) => {
      const raw = (c.req.query('q') ?? '').trim()
      const q = hasNul(raw) ? '' : raw.slice(0, 200)
      const all = await users.list()
      const needle = q.toLowerCase()
      const people = needle
        ? all.filter((u) => u.email.includes(needle) || u.name.toLowerCase().includes(needle))
        : all
      return html(
        c,
        peoplePage({
          people: people.map(view),
          total: all.length,
          query: q,
          roles: await roleNames(),
          csrfToken: admin.session.csrfToken,
          notice: notice(c),
        }),
      )
    }),
  )

  app.post(
    '/admin/people',
    consoleAction(
      deps,
      () => '/admin/people',
      async (c, admin, form) => {
        const password = form.get('password')
        const user = await users.create(
          {
            email: form.get('email') ?? '',
            name: form.get('name') ?? '',
            roles: form.all('role'),
            ...(password !== undefined && { password }),
          },
          admin.actor,
        )
        return done(c, `${personPath(user.id)}?done=created`)
      },
      ROLE,
    ),
  )

  app.get(
    '/admin/people/:id',
    consoleView(deps, async (c, admin) => {
      const user = await users.findById(c.req.param('id') ?? '')
      if (!user) return c.notFound()
      return html(
        c,
        personPage({
          person: view(user),
          connections: (await deps.vault.list(user.id)).map((k) => ({
            provider: k.provider,
            accountLabel: k.accountLabel,
            status: k.status,
            lastUsedAt: k.lastUsedAt,
          })),
          roles: await roleNames(),
          csrfToken: admin.session.csrfToken,
          notice: notice(c),
        }),
      )
    }),
  )

  const back = (c: Context<AppEnv>) => personPath(c.req.param('id') ?? '')

  app.post(
    '/admin/people/:id/status',
    consoleAction(deps, back, async (c, admin, form) => {
      const status = form.get('status')
      if (status !== 'active' && status !== 'disabled')
        throw new DeputyError('ERR_INVALID_INPUT', 'status must be active or disabled')
      const user = await personOf(c)
      if (user.status !== status) await users.setStatus(user.email, status, admin.actor)
      return done(c, `${personPath(user.id)}?done=${status === 'active' ? 'enabled' : 'disabled'}`)
    }),
  )

  app.post(
    '/admin/people/:id/roles',
    consoleAction(
      deps,
      back,
      async (c, admin, form) => {
        const user = await personOf(c)
        await users.setRoles(user.email, form.all('role'), admin.actor)
        return done(c, `${personPath(user.id)}?done=roles`)
      },
      ROLE,
    ),
  )

  app.post(
    '/admin/people/:id/claims',
    consoleAction(deps, back, async (c, admin, form) => {
      const user = await personOf(c)
      const text = form.get('claims') ?? '{}'
      // Bounded before it is parsed, as the admin API bounds its bodies (admin/auth.ts).
      const problem = jsonTextProblem(text)
      if (problem) throw new DeputyError('ERR_INVALID_INPUT', `claims ${problem}`)
      let claims: unknown
      try {
        claims = JSON.parse(text)
      } catch {
        throw new DeputyError('ERR_INVALID_INPUT', 'claims must be JSON, e.g. {"team": "red"}')
      }
      if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
        throw new DeputyError('ERR_INVALID_INPUT', 'claims must be a JSON object')
      await users.setClaims(user.email, claims, admin.actor)
      return done(c, `${personPath(user.id)}?done=claims`)
    }),
  )
}
