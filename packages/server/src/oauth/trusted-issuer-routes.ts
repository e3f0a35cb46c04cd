import type { Hono, MiddlewareHandler } from 'hono'
import { z } from 'zod'
import type { AdminEnv } from '../admin/auth.js'
import { type AdminCall, mountAdminRoutes, routeRecords } from '../admin/route-records.js'
import type { AppEnv } from '../http/env.js'
import { DeputyError } from '../lib/errors.js'
import { TRUSTED_ISSUER_KINDS, type TrustedIssuer, type TrustedIssuers } from './trusted-issuers.js'

// The operators' side of the trust store (issue 13 §2, §4; docs/workload-identity.md), described
// once: the records mount the admin API routes and document them in openapi.json, and
// `deputy trusted-issuers …` prints the same wire shape.

export const TrustedIssuerWire = z
  .object({
    name: z.string(),
    kind: z.enum(TRUSTED_ISSUER_KINDS),
    issuer: z.string(),
    jwks_uri: z.string().nullable(),
    jwks_keys: z.number().nullable().describe('How many keys a stored JWK Set holds.'),
    algorithms: z.array(z.string()),
    audience: z.string().nullable().describe('null: Deputy’s issuer or token endpoint.'),
    max_lifetime_seconds: z.number(),
    link_provider: z.string().nullable(),
    match_email: z.boolean(),
    rules: z.array(z.object({ client: z.string(), claims: z.record(z.string(), z.string()) })),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .describe('TrustedIssuer')

/** A trusted issuer as the admin API and the CLI show it (keys counted, not listed). */
export function trustedIssuerToWire(t: TrustedIssuer): z.infer<typeof TrustedIssuerWire> {
  return {
    name: t.name,
    kind: t.kind,
    issuer: t.issuer,
    jwks_uri: t.jwksUri,
    jwks_keys: t.jwks?.keys.length ?? null,
    algorithms: t.algorithms,
    audience: t.audience,
    max_lifetime_seconds: t.maxLifetimeSeconds,
    link_provider: t.linkProvider,
    match_email: t.matchEmail,
    rules: t.rules,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  }
}

const AddBody = z.strictObject({
  name: z.string(),
  kind: z.enum(TRUSTED_ISSUER_KINDS),
  issuer: z.string(),
  jwks_uri: z.string().optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  algorithms: z.array(z.string()).optional(),
  audience: z.string().optional(),
  max_lifetime_seconds: z.number().int().optional(),
  link_provider: z.string().optional(),
  match_email: z.boolean().optional(),
})

const RuleBody = z.strictObject({
  client: z.string(),
  claims: z
    .record(z.string(), z.string())
    .describe(
      'Workload issuer: the claims an assertion must carry, each with exactly this value. Resource AS: `client_id`, the client’s id there.',
    ),
})

export interface TrustedIssuerRouteDeps {
  trustedIssuers: TrustedIssuers
}

const route = routeRecords<TrustedIssuerRouteDeps>()

async function one(call: AdminCall<TrustedIssuerRouteDeps, unknown>) {
  const name = call.params.name as string
  const found = await call.deps.trustedIssuers.get(name)
  if (!found) throw new DeputyError('ERR_NOT_FOUND', `no trusted issuer ${name}`)
  return trustedIssuerToWire(found)
}

/** Every trust-store route of the admin API (paths relative to /admin/api). */
export const TRUSTED_ISSUER_ADMIN_ROUTES = [
  route({
    method: 'get',
    path: '/trusted-issuers',
    summary: 'List the trusted workload issuers, enterprise IdPs and ID-JAG audiences',
    response: z.object({ trusted_issuers: z.array(TrustedIssuerWire) }),
    handle: async ({ deps }) => ({
      trusted_issuers: (await deps.trustedIssuers.list()).map(trustedIssuerToWire),
    }),
  }),
  route({
    method: 'post',
    path: '/trusted-issuers',
    summary:
      'Trust an issuer of jwt-bearer assertions, or an authorization server to issue ID-JAGs for',
    body: AddBody,
    response: TrustedIssuerWire,
    status: 201,
    errors: [400, 404, 409],
    handle: async ({ deps, body, actor }) => {
      const b = body as z.infer<typeof AddBody>
      const added = await deps.trustedIssuers.add(
        {
          name: b.name,
          kind: b.kind,
          issuer: b.issuer,
          jwksUri: b.jwks_uri,
          jwks: b.jwks as { keys: { kty: string }[] } | undefined,
          algorithms: b.algorithms as never,
          audience: b.audience,
          maxLifetimeSeconds: b.max_lifetime_seconds,
          linkProvider: b.link_provider,
          matchEmail: b.match_email,
        },
        actor,
      )
      return trustedIssuerToWire(added)
    },
  }),
  route({
    method: 'get',
    path: '/trusted-issuers/:name',
    summary: 'Get a trusted issuer',
    response: TrustedIssuerWire,
    errors: [404],
    handle: one,
  }),
  route({
    method: 'delete',
    path: '/trusted-issuers/:name',
    summary: 'Stop trusting an issuer: its assertions get nothing from now on',
    response: z.null(),
    noContent: true,
    errors: [404],
    handle: async ({ deps, params, actor }) =>
      deps.trustedIssuers.remove(params.name as string, actor),
  }),
  route({
    method: 'post',
    path: '/trusted-issuers/:name/rules',
    summary: 'Map a workload’s claims to a client (or a client to its id at a resource AS)',
    body: RuleBody,
    response: TrustedIssuerWire,
    errors: [400, 404],
    handle: async ({ deps, params, body, actor }) =>
      trustedIssuerToWire(
        await deps.trustedIssuers.map(
          params.name as string,
          body as z.infer<typeof RuleBody>,
          actor,
        ),
      ),
  }),
  route({
    method: 'delete',
    path: '/trusted-issuers/:name/rules/:client',
    summary: 'Remove the rules of a trusted issuer for one client',
    response: TrustedIssuerWire,
    errors: [404],
    handle: async ({ deps, params, actor }) =>
      trustedIssuerToWire(
        await deps.trustedIssuers.unmap(params.name as string, params.client as string, actor),
      ),
  }),
]

/** The trust store's admin API (/admin/api/trusted-issuers), every change audited. */
export function createTrustedIssuerAdminApi(
  deps: TrustedIssuerRouteDeps & { adminGate: MiddlewareHandler<AdminEnv> },
): Hono<AppEnv> {
  return mountAdminRoutes(TRUSTED_ISSUER_ADMIN_ROUTES, {
    deps,
    adminGate: deps.adminGate,
    guarded: ['/trusted-issuers', '/trusted-issuers/*'],
  })
}
