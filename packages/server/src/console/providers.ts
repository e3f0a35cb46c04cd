import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import { parseInput, type Users } from '../identity/users.js'
import { DeputyError } from '../lib/errors.js'
import { Changeable } from '../providers/admin-routes.js'
import type { Provider, Providers, UpdateProviderInput } from '../providers/types.js'
import {
  type ProviderConnectionView,
  type ProviderDetailView,
  providerPage,
  providersPage,
} from '../ui/console/provider.js'
import type { Vault } from '../vault/types.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/** What the provider pages read and change: the same registry and vault as the admin API. */
export interface ProvidersConsoleDeps extends SessionDeps {
  providers: Pick<Providers, 'list' | 'get' | 'update' | 'setStatus'>
  vault: Pick<Vault, 'listByProvider' | 'disconnect'>
  users: Pick<Users, 'findById'>
}

/** Connections a provider's page lists. */
const CONNECTIONS_SHOWN = 200

const NOTICES: Record<string, string> = {
  disabled: 'Disabled: nobody can sign in or connect through it until it is enabled.',
  enabled: 'Enabled: people can sign in and connect through it again.',
  saved: 'Settings saved.',
  unchanged: 'Nothing to change: the settings were already these.',
  disconnected: 'Disconnected: the tokens are revoked where the provider allows it, and deleted.',
}

function providerPath(name: string, rest = ''): string {
  return `/admin/providers/${encodeURIComponent(name)}${rest}`
}

function detail(p: Provider): ProviderDetailView {
  return {
    name: p.name,
    displayName: p.displayName,
    type: p.type,
    uses: p.uses,
    status: p.status,
    scopes: p.scopes,
    clientId: p.clientId,
    hasClientSecret: p.hasClientSecret,
    issuer: p.issuer,
    endpoints: Object.entries(p.endpoints).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
    defaultRoles: p.defaultRoles,
    allowedClients: p.allowedClients,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  }
}

/**
 * The changes a settings form asks for, only those that differ from what is stored (the
 * `provider.updated` record names what changed). The secret is write-only: empty keeps it.
 */
function changesOf(
  current: Provider,
  form: { get(name: string): string | undefined },
): UpdateProviderInput {
  const changes: UpdateProviderInput = {}
  const displayName = form.get('display_name')?.trim()
  if (!displayName) throw new DeputyError('ERR_INVALID_INPUT', 'the display name cannot be empty')
  parseInput(Changeable.display_name, displayName, 'the display name')
  if (displayName !== current.displayName) changes.displayName = displayName
  const clientId = form.get('client_id')?.trim()
  if (!clientId) throw new DeputyError('ERR_INVALID_INPUT', 'the client id cannot be empty')
  parseInput(Changeable.client_id, clientId, 'the client id')
  if (clientId !== current.clientId) changes.clientId = clientId
  const scopes = [...new Set((form.get('scopes') ?? '').split(/[\s,]+/).filter(Boolean))]
  if (scopes.join(' ') !== current.scopes.join(' ')) changes.scopes = scopes
  // Spaces alone are no secret: they would remove the one set (update trims it to nothing).
  const secret = form.get('client_secret')?.trim() || undefined
  const remove = form.get('remove_secret') === '1'
  if (secret !== undefined && remove)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      'give a new client secret or remove the one set, not both',
    )
  if (secret !== undefined)
    changes.clientSecret = parseInput(
      Changeable.client_secret,
      secret,
      'the client secret',
    ) as string
  else if (remove && current.hasClientSecret) changes.clientSecret = ''
  return changes
}

/** Providers (issue 15 §1): the list, a provider's page, its settings and its connections. */
export function registerProviderPages(app: Hono<AppEnv>, deps: ProvidersConsoleDeps): void {
  const { providers } = deps
  const providerOf = async (c: Context<AppEnv>): Promise<Provider> => {
    const name = c.req.param('name') ?? ''
    const provider = await providers.get(name)
    if (!provider) throw new DeputyError('ERR_NOT_FOUND', `no provider named ${name}`)
    return provider
  }
  const back = (c: Context<AppEnv>) => providerPath(c.req.param('name') ?? '')

  app.get(
    '/admin/providers',
    consoleView(deps, async (c) => {
      const list = (await providers.list()).map((p) => ({
        name: p.name,
        displayName: p.displayName,
        type: p.type,
        uses: p.uses.map((use) => (use === 'connect' ? 'connected accounts' : 'sign-in')),
        status: p.status,
        scopes: p.scopes,
      }))
      return html(c, providersPage({ providers: list }))
    }),
  )

  app.get(
    '/admin/providers/:name',
    consoleView(deps, async (c, admin) => {
      const provider = await providers.get(c.req.param('name') ?? '')
      if (!provider) return c.notFound()
      const rows = await deps.vault.listByProvider(provider.name, CONNECTIONS_SHOWN + 1)
      const emails = new Map<string, string>()
      const connections: ProviderConnectionView[] = []
      for (const k of rows.slice(0, CONNECTIONS_SHOWN)) {
        if (!emails.has(k.userId))
          emails.set(k.userId, (await deps.users.findById(k.userId))?.email ?? k.userId)
        connections.push({
          userId: k.userId,
          person: emails.get(k.userId) as string,
          accountLabel: k.accountLabel,
          status: k.status,
          scopes: k.scopes,
          lastUsedAt: k.lastUsedAt,
          createdAt: k.createdAt,
        })
      }
      return html(
        c,
        providerPage({
          provider: detail(provider),
          connections,
          moreConnections: rows.length > CONNECTIONS_SHOWN,
          csrfToken: admin.session.csrfToken,
          notice: NOTICES[c.req.query('done') ?? ''],
        }),
      )
    }),
  )

  app.post(
    '/admin/providers/:name',
    consoleAction(deps, back, async (c, admin, form) => {
      const provider = await providerOf(c)
      const changes = changesOf(provider, form)
      if (Object.keys(changes).length === 0)
        return done(c, providerPath(provider.name, '?done=unchanged'))
      await providers.update(provider.name, changes, admin.actor)
      return done(c, providerPath(provider.name, '?done=saved'))
    }),
  )

  app.post(
    '/admin/providers/:name/status',
    consoleAction(deps, back, async (c, admin, form) => {
      const status = form.get('status')
      if (status !== 'active' && status !== 'disabled')
        throw new DeputyError('ERR_INVALID_INPUT', 'status must be active or disabled')
      const provider = await providerOf(c)
      await providers.setStatus(provider.name, status, admin.actor)
      return done(
        c,
        providerPath(provider.name, `?done=${status === 'active' ? 'enabled' : 'disabled'}`),
      )
    }),
  )

  app.post(
    '/admin/providers/:name/connections/:userId/disconnect',
    consoleAction(deps, back, async (c, admin) => {
      const provider = await providerOf(c)
      const userId = c.req.param('userId') ?? ''
      if (!(await deps.vault.disconnect(userId, provider.name, admin.actor)))
        throw new DeputyError('ERR_NOT_FOUND', `that person has no ${provider.name} connection`)
      return done(c, providerPath(provider.name, '?done=disconnected'))
    }),
  )
}
