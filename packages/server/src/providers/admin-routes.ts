import { z } from 'zod'
import { type AdminCall, type AdminRouteRecord, routeRecords } from '../admin/route-records.js'
import { DeputyError } from '../lib/errors.js'
import { PROVIDER_TYPES } from './catalogue.js'
import type { AddProviderInput, Provider, Providers, UpdateProviderInput } from './types.js'

// The operators' side of upstream providers (issue 12 §1), described once: the same records mount
// the admin API routes (admin-api.ts) and document them (admin/openapi.ts); `deputy providers …`
// prints the same wire shape. The client secret goes in, never out.

const Endpoints = z.object({
  authorization_endpoint: z.string(),
  token_endpoint: z.string(),
  userinfo_endpoint: z.string().optional(),
  revocation_endpoint: z.string().optional(),
  jwks_uri: z.string().optional(),
  user_api: z.string().optional(),
  emails_api: z.string().optional(),
  authorization_response_iss_parameter_supported: z.boolean().optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
})

export const ProviderWire = z
  .object({
    name: z.string().describe('In URLs: /login/<name>, /connect/<name>.'),
    type: z.enum(PROVIDER_TYPES as [string, ...string[]]),
    display_name: z.string(),
    client_id: z.string(),
    has_client_secret: z.boolean().describe('The secret itself is sealed and never shown.'),
    issuer: z.string().nullable(),
    endpoints: Endpoints,
    uses: z.array(z.enum(['sign-in', 'connect'])),
    scopes: z.array(z.string()),
    default_roles: z.array(z.string()),
    allowed_clients: z.array(z.string()),
    status: z.enum(['active', 'disabled']),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .describe('Provider')

/** A provider as the admin API and the CLI show it (never its secret). */
export function providerToWire(p: Provider): z.infer<typeof ProviderWire> {
  return {
    name: p.name,
    type: p.type,
    display_name: p.displayName,
    client_id: p.clientId,
    has_client_secret: p.hasClientSecret,
    issuer: p.issuer,
    endpoints: p.endpoints,
    uses: p.uses,
    scopes: p.scopes,
    default_roles: p.defaultRoles,
    allowed_clients: p.allowedClients,
    status: p.status,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  }
}

const EndpointOverrides = z.strictObject({
  authorization_endpoint: z.string().optional(),
  token_endpoint: z.string().optional(),
  userinfo_endpoint: z.string().optional(),
  revocation_endpoint: z.string().optional(),
  jwks_uri: z.string().optional(),
  user_api: z.string().optional(),
  emails_api: z.string().optional(),
})

/** What an update may change, with the bounds every surface shares (the console's form too). */
export const Changeable = {
  display_name: z.string().max(200).optional(),
  client_id: z.string().min(1).max(500).optional(),
  client_secret: z
    .string()
    .max(4096)
    .optional()
    .describe('Sealed at rest; never answered. An empty string removes it (PKCE only).'),
  issuer: z.string().optional().describe('OpenID types only; discovered when set.'),
  uses: z.array(z.enum(['sign-in', 'connect'])).optional(),
  scopes: z.array(z.string()).optional(),
  default_roles: z.array(z.string()).optional(),
  allowed_clients: z
    .array(z.string())
    .optional()
    .describe('Confidential clients allowed to exchange for this provider’s tokens.'),
  endpoints: EndpointOverrides.optional().describe('Overrides of the catalogue or discovery.'),
}

// Our own API rejects unknown fields: a misspelt `client_secert` must not be silently ignored.
const AddBody = z.strictObject({
  name: z.string(),
  type: z.enum(PROVIDER_TYPES as [string, ...string[]]),
  ...Changeable,
  client_id: z.string().min(1).max(500),
})
const UpdateBody = z.strictObject(Changeable)

type Changes = z.infer<typeof UpdateBody>

function toUpdate(body: Changes): UpdateProviderInput {
  return {
    displayName: body.display_name,
    clientId: body.client_id,
    clientSecret: body.client_secret,
    issuer: body.issuer,
    uses: body.uses,
    scopes: body.scopes,
    defaultRoles: body.default_roles,
    allowedClients: body.allowed_clients,
    endpoints: body.endpoints,
  }
}

/** What the provider routes use. */
export interface ProviderRouteDeps {
  providers: Providers
}

/** What a handler is given. */
export type ProviderCall<B> = AdminCall<ProviderRouteDeps, B>

/** A route record: its description (for openapi.json) and its handler. */
export type ProviderAdminRoute<B = unknown> = AdminRouteRecord<ProviderRouteDeps, B>

const route = routeRecords<ProviderRouteDeps>()

async function one(call: ProviderCall<unknown>) {
  const name = call.params.name as string
  const found = await call.deps.providers.get(name)
  if (!found) throw new DeputyError('ERR_NOT_FOUND', `no provider named ${name}`)
  return providerToWire(found)
}

const status = (to: 'active' | 'disabled') => async (call: ProviderCall<unknown>) =>
  providerToWire(await call.deps.providers.setStatus(call.params.name as string, to, call.actor))

/** Every provider route of the admin API (paths relative to /admin/api). */
export const PROVIDER_ADMIN_ROUTES: readonly ProviderAdminRoute<unknown>[] = [
  route({
    method: 'get',
    path: '/providers',
    summary: 'List the upstream providers (sign-in and connected accounts)',
    response: z.object({ providers: z.array(ProviderWire) }),
    handle: async ({ deps }) => ({ providers: (await deps.providers.list()).map(providerToWire) }),
  }),
  route({
    method: 'post',
    path: '/providers',
    summary: 'Add an upstream provider; OpenID types are discovered now and their issuer checked',
    body: AddBody,
    response: ProviderWire,
    status: 201,
    errors: [400, 409],
    handle: async ({ deps, body, actor }) => {
      const b = body as z.infer<typeof AddBody>
      const input: AddProviderInput = {
        ...toUpdate(b),
        name: b.name,
        type: b.type as AddProviderInput['type'],
        clientId: b.client_id,
      }
      return providerToWire(await deps.providers.add(input, actor))
    },
  }),
  route({
    method: 'get',
    path: '/providers/:name',
    summary: 'Get an upstream provider',
    response: ProviderWire,
    errors: [404],
    handle: one,
  }),
  route({
    method: 'patch',
    path: '/providers/:name',
    summary: 'Change an upstream provider (a new issuer is discovered afresh)',
    body: UpdateBody,
    response: ProviderWire,
    errors: [400, 404],
    handle: async ({ deps, params, body, actor }) =>
      providerToWire(
        await deps.providers.update(params.name as string, toUpdate(body as Changes), actor),
      ),
  }),
  route({
    method: 'delete',
    path: '/providers/:name',
    summary: 'Remove an upstream provider with its sign-in identities and connections',
    response: z.null(),
    noContent: true,
    errors: [404],
    handle: async ({ deps, params, actor }) => deps.providers.remove(params.name as string, actor),
  }),
  route({
    method: 'post',
    path: '/providers/:name/disable',
    summary: 'Disable a provider: no sign-in or connecting through it until enabled',
    response: ProviderWire,
    errors: [404],
    handle: status('disabled'),
  }),
  route({
    method: 'post',
    path: '/providers/:name/enable',
    summary: 'Enable a disabled provider',
    response: ProviderWire,
    errors: [404],
    handle: status('active'),
  }),
]
