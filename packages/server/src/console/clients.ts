import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import { DeputyError } from '../lib/errors.js'
import type { Client, Clients } from '../oauth/clients.js'
import {
  type ClientView,
  clientPage,
  clientsPage,
  deleteClientPage,
} from '../ui/console/clients.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/** What the client pages read and change: the same clients the admin API uses. */
export interface ClientsConsoleDeps extends SessionDeps {
  clients: Pick<Clients, 'list' | 'get' | 'disable' | 'enable' | 'delete'>
}

const NOTICES: Record<string, string> = {
  disabled: 'Disabled: it gets no new tokens, and its grants have ended.',
  enabled: 'Enabled: it may ask for tokens again.',
  deleted: 'Client deleted, with every grant it held.',
}

function view(client: Client): ClientView {
  return {
    clientId: client.clientId,
    name: client.name,
    kind: client.kind,
    status: client.status,
    redirectUris: client.redirectUris,
    grantTypes: client.grantTypes,
    tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
    allowedScopes: client.allowedScopes,
    createdAt: client.createdAt,
    expiresAt: client.expiresAt === null ? null : new Date(client.expiresAt).toISOString(),
  }
}

function clientPath(id: string, rest = ''): string {
  return `/admin/clients/${encodeURIComponent(id)}${rest}`
}

/** Clients (issue 15 §1): pre-registered, dynamic and metadata-document; disable, enable, delete. */
export function registerClientPages(app: Hono<AppEnv>, deps: ClientsConsoleDeps): void {
  const { clients } = deps
  const notice = (c: Context<AppEnv>) => NOTICES[c.req.query('done') ?? '']
  const clientOf = async (c: Context<AppEnv>): Promise<Client> => {
    const client = await clients.get(c.req.param('id') ?? '')
    if (!client) throw new DeputyError('ERR_NOT_FOUND', 'no client with that id')
    return client
  }
  const back = (c: Context<AppEnv>) => clientPath(c.req.param('id') ?? '')

  app.get(
    '/admin/clients',
    consoleView(deps, async (c) =>
      html(c, clientsPage({ clients: (await clients.list()).map(view), notice: notice(c) })),
    ),
  )

  app.get(
    '/admin/clients/:id',
    consoleView(deps, async (c, admin) => {
      const client = await clients.get(c.req.param('id') ?? '')
      if (!client) return c.notFound()
      return html(
        c,
        clientPage({ client: view(client), csrfToken: admin.session.csrfToken, notice: notice(c) }),
      )
    }),
  )

  // Deleting asks first: this page holds the only form that deletes.
  app.get(
    '/admin/clients/:id/delete',
    consoleView(deps, async (c, admin) => {
      const client = await clients.get(c.req.param('id') ?? '')
      if (!client) return c.notFound()
      return html(c, deleteClientPage({ client: view(client), csrfToken: admin.session.csrfToken }))
    }),
  )

  app.post(
    '/admin/clients/:id/disable',
    consoleAction(deps, back, async (c, admin) => {
      const client = await clientOf(c)
      await clients.disable(client.clientId, admin.actor)
      return done(c, clientPath(client.clientId, '?done=disabled'))
    }),
  )

  app.post(
    '/admin/clients/:id/enable',
    consoleAction(deps, back, async (c, admin) => {
      const client = await clientOf(c)
      await clients.enable(client.clientId, admin.actor)
      return done(c, clientPath(client.clientId, '?done=enabled'))
    }),
  )

  app.post(
    '/admin/clients/:id/delete',
    consoleAction(deps, back, async (c, admin, form) => {
      if (form.get('confirm') !== 'delete')
        throw new DeputyError('ERR_INVALID_INPUT', 'confirm the deletion on the page that asks')
      const client = await clientOf(c)
      await clients.delete(client.clientId, admin.actor)
      return done(c, '/admin/clients?done=deleted')
    }),
  )
}
