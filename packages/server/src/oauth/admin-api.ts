import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { z } from 'zod'
import type { AdminEnv } from '../admin/auth.js'
import type { AppEnv } from '../http/env.js'
import { DeputyError } from '../lib/errors.js'
import {
  CLIENT_AUTH_METHODS,
  type Client,
  type Clients,
  type CreatedClient,
  GRANT_TYPES,
} from './clients.js'
import type { DelegationRule, DelegationRules } from './delegation-rules.js'
import type { MetadataHostGrant, MetadataHosts } from './metadata-hosts.js'
import type { Resource, Resources } from './resources.js'

// The shapes sent by the admin API and by `deputy resources|clients … --json`: snake_case on the
// wire, camelCase in code (as admin/wire.ts does for users and roles).

/** A resource as the admin API and the CLI show it. */
export function resourceToWire(resource: Resource) {
  return {
    uri: resource.uri,
    name: resource.name,
    scopes: resource.scopes,
    claims_template: resource.claimsTemplate,
    is_default: resource.isDefault,
  }
}

/** A client as the admin API and the CLI show it (never a secret digest). */
export function clientToWire(client: Client) {
  return {
    client_id: client.clientId,
    kind: client.kind,
    name: client.name,
    status: client.status,
    redirect_uris: client.redirectUris,
    grant_types: client.grantTypes,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    allowed_scopes: client.allowedScopes,
    allowed_resources: client.allowedResources,
    backchannel_token_delivery_mode: client.backchannelTokenDeliveryMode,
    backchannel_client_notification_endpoint: client.backchannelClientNotificationEndpoint,
    application_type: client.applicationType,
    jwks_uri: client.jwksUri,
    has_jwks: client.jwks !== null,
    expires_at: client.expiresAt === null ? null : new Date(client.expiresAt).toISOString(),
    created_at: client.createdAt,
  }
}

/** A metadata-document host the operator allowed machine tokens, at one resource. */
export function metadataHostToWire(grant: MetadataHostGrant) {
  return {
    host: grant.host,
    resource: grant.resource,
    scopes: grant.scopes,
    created_at: grant.createdAt,
    updated_at: grant.updatedAt,
  }
}

/** What a client may do for people through token exchange (docs/delegation.md). */
export function delegationRuleToWire(rule: DelegationRule) {
  return { client_id: rule.clientId, to: rule.resources, impersonate: rule.impersonate }
}

/** A client just created: with its secret, the only time it is ever shown. */
export function createdClientToWire(created: CreatedClient) {
  return {
    ...clientToWire(created.client),
    ...(created.clientSecret ? { client_secret: created.clientSecret } : {}),
  }
}

// Our own API rejects unknown fields: a misspelt `redirect_uri` must not be silently ignored.
const PutResourceBody = z.strictObject({
  uri: z.string(),
  name: z.string().max(200).optional(),
  scopes: z.record(z.string(), z.string().max(500)),
  claims_template: z.array(z.string().max(100)).max(50).optional(),
  is_default: z.boolean().optional(),
})

const CreateClientBody = z.strictObject({
  name: z.string(),
  redirect_uris: z.array(z.string()).max(20).optional(),
  public: z.boolean().optional(),
  grant_types: z.array(z.enum(GRANT_TYPES)).optional(),
  token_endpoint_auth_method: z.enum(CLIENT_AUTH_METHODS).optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
  jwks_uri: z.string().max(2048).optional(),
  allowed_scopes: z.array(z.string()).max(100).optional(),
  allowed_resources: z.array(z.string()).max(100).optional(),
  backchannel_token_delivery_mode: z.enum(['poll', 'ping']).optional(),
  backchannel_client_notification_endpoint: z.string().max(2048).optional(),
})

const AllowMetadataHostBody = z.strictObject({
  host: z.string(),
  resource: z.string(),
  scopes: z.array(z.string()).max(100),
})

const SetDelegationBody = z.strictObject({
  to: z.array(z.string().max(2048)).max(100),
  impersonate: z.boolean().optional(),
})

async function readBody<T>(c: Context<AdminEnv>, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown
  try {
    raw = await c.req.json()
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', 'the request body must be a JSON object')
  }
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const field =
    issue?.code === 'unrecognized_keys'
      ? `${issue.keys[0]} is not a known field`
      : `${issue?.path.map(String).join('.') || 'the request body'} ${issue?.message ?? 'is invalid'}`
  throw new DeputyError('ERR_INVALID_INPUT', field)
}

const noStore = { 'Cache-Control': 'no-store' }

/**
 * The admin API for resources and clients (mounted at /admin/api beside the users and roles API):
 * the same admin API key or signed-in administrator, every change an audit event naming them.
 */
export function createOAuthAdminApi(deps: {
  resources: Resources
  clients: Clients
  metadataHosts: MetadataHosts
  delegationRules: DelegationRules
  /** The admin gate (admin/auth.ts `requireAdmin`). */
  adminGate: MiddlewareHandler<AdminEnv>
}): Hono<AppEnv> {
  const app = new Hono<AdminEnv>()
  const gate = deps.adminGate
  // Mounted on the same prefix as the users API, whose gate may already have run for this request.
  const auth: MiddlewareHandler<AdminEnv> = (c, next) => (c.get('actor') ? next() : gate(c, next))
  for (const path of [
    '/resources',
    '/resources/*',
    '/clients',
    '/clients/*',
    '/client-metadata-hosts',
    '/client-metadata-hosts/*',
  ])
    app.use(path, auth)

  app.get('/resources', async (c) =>
    c.json({ resources: (await deps.resources.list()).map(resourceToWire) }, 200, noStore),
  )
  app.post('/resources', async (c) => {
    const body = await readBody(c, PutResourceBody)
    const resource = await deps.resources.put(
      {
        uri: body.uri,
        name: body.name,
        scopes: body.scopes,
        claimsTemplate: body.claims_template,
        isDefault: body.is_default,
      },
      c.get('actor'),
    )
    return c.json(resourceToWire(resource), 201, noStore)
  })
  // The URI travels URL-encoded as one path segment: /admin/api/resources/https%3A%2F%2Fshop%2Fmcp.
  app.delete('/resources/:uri', async (c) => {
    await deps.resources.remove(c.req.param('uri'), c.get('actor'))
    return c.body(null, 204, noStore)
  })

  app.get('/clients', async (c) =>
    c.json({ clients: (await deps.clients.list()).map(clientToWire) }, 200, noStore),
  )
  app.post('/clients', async (c) => {
    const body = await readBody(c, CreateClientBody)
    const created = await deps.clients.register(
      {
        name: body.name,
        redirectUris: body.redirect_uris,
        public: body.public,
        grantTypes: body.grant_types,
        tokenEndpointAuthMethod: body.token_endpoint_auth_method,
        jwks: body.jwks,
        jwksUri: body.jwks_uri,
        allowedScopes: body.allowed_scopes,
        allowedResources: body.allowed_resources,
        backchannelTokenDeliveryMode: body.backchannel_token_delivery_mode,
        backchannelClientNotificationEndpoint: body.backchannel_client_notification_endpoint,
      },
      c.get('actor'),
    )
    return c.json(createdClientToWire(created), 201, noStore)
  })
  app.post('/clients/:id/disable', async (c) => {
    const id = c.req.param('id')
    await deps.clients.disable(id, c.get('actor'))
    const client = await deps.clients.get(id)
    if (!client) throw new DeputyError('ERR_NOT_FOUND', `no client ${id}`)
    return c.json(clientToWire(client), 200, noStore)
  })
  app.post('/clients/:id/enable', async (c) => {
    const id = c.req.param('id')
    await deps.clients.enable(id, c.get('actor'))
    const client = await deps.clients.get(id)
    if (!client) throw new DeputyError('ERR_NOT_FOUND', `no client ${id}`)
    return c.json(clientToWire(client), 200, noStore)
  })
  // Who the client may act for people toward (RFC 8693 delegation); `to: []` clears it.
  app.get('/clients/:id/delegation', async (c) => {
    const id = c.req.param('id')
    if (!(await deps.clients.get(id))) throw new DeputyError('ERR_NOT_FOUND', `no client ${id}`)
    return c.json(delegationRuleToWire(await deps.delegationRules.forClient(id)), 200, noStore)
  })
  app.put('/clients/:id/delegation', async (c) => {
    const body = await readBody(c, SetDelegationBody)
    const rule = await deps.delegationRules.set(
      c.req.param('id'),
      { resources: body.to, impersonate: body.impersonate ?? false },
      c.get('actor'),
    )
    return c.json(delegationRuleToWire(rule), 200, noStore)
  })
  app.delete('/clients/:id/delegation', async (c) => {
    await deps.delegationRules.set(c.req.param('id'), { resources: [] }, c.get('actor'))
    return c.body(null, 204, noStore)
  })
  app.delete('/clients/:id', async (c) => {
    await deps.clients.delete(c.req.param('id'), c.get('actor'))
    return c.body(null, 204, noStore)
  })

  app.get('/client-metadata-hosts', async (c) =>
    c.json({ hosts: (await deps.metadataHosts.list()).map(metadataHostToWire) }, 200, noStore),
  )
  app.put('/client-metadata-hosts', async (c) => {
    const body = await readBody(c, AllowMetadataHostBody)
    const grant = await deps.metadataHosts.allow(body, c.get('actor'))
    return c.json(metadataHostToWire(grant), 200, noStore)
  })
  // ?resource=… takes back one resource; without it, everything the host was granted.
  app.delete('/client-metadata-hosts/:host', async (c) => {
    await deps.metadataHosts.disallow(c.req.param('host'), c.req.query('resource'), c.get('actor'))
    return c.body(null, 204, noStore)
  })
  return app as unknown as Hono<AppEnv>
}
