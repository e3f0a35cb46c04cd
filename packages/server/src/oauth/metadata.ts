import { type Context, Hono } from 'hono'
import type { DetailTypes } from '../approvals/detail-types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { CLIENT_ASSERTION_ALGS } from './client-auth.js'
import { CLIENT_AUTH_METHODS, GRANT_TYPES } from './clients.js'
import { DPOP_SIGNING_ALGS } from './dpop.js'
import { ID_JAG_GRANT_PROFILE, ID_JAG_TOKEN_TYPE } from './grants/id-jag-exchange.js'
import type { Resources } from './resources.js'
import { OIDC_SCOPES } from './scopes.js'

/** What the metadata documents read: the settings they describe and the resources' scopes. */
export interface MetadataDeps {
  config: Pick<ResolvedConfig, 'issuer' | 'dynamicRegistration' | 'signingAlg'>
  resources: Pick<Resources, 'list'>
  detailTypes: Pick<DetailTypes, 'names'>
}

/** Where each endpoint lives, relative to the issuer. Other modules mount them at these paths. */
export const ENDPOINT_PATHS = {
  authorization: '/authorize',
  token: '/token',
  revocation: '/revoke',
  introspection: '/introspect',
  userinfo: '/userinfo',
  registration: '/register',
  jwks: '/jwks',
  backchannel: '/bc-authorize',
} as const

/**
 * The authorization server's metadata: one document serves RFC 8414 and OpenID Connect Discovery
 * 1.0 §3. It advertises only what Deputy really does, because clients act on it (MCP clients refuse
 * to go on without `code_challenge_methods_supported`, and check `issuer` to the byte).
 */
export async function authorizationServerMetadata(
  deps: MetadataDeps,
): Promise<Record<string, unknown>> {
  const { issuer } = deps.config
  const at = (path: string) => `${issuer}${path}`
  const resourceScopes = new Set<string>()
  for (const resource of await deps.resources.list())
    for (const scope of Object.keys(resource.scopes)) resourceScopes.add(scope)
  const authMethods = [...CLIENT_AUTH_METHODS]
  const clientAuthMethods = authMethods.filter((m) => m !== 'none')
  return {
    // RFC 8414 §2 / §3.3: exactly the configured issuer, no trailing slash added or removed.
    issuer,
    authorization_endpoint: at(ENDPOINT_PATHS.authorization),
    token_endpoint: at(ENDPOINT_PATHS.token),
    jwks_uri: at(ENDPOINT_PATHS.jwks),
    ...(deps.config.dynamicRegistration
      ? { registration_endpoint: at(ENDPOINT_PATHS.registration) }
      : {}),
    revocation_endpoint: at(ENDPOINT_PATHS.revocation),
    introspection_endpoint: at(ENDPOINT_PATHS.introspection),
    userinfo_endpoint: at(ENDPOINT_PATHS.userinfo),
    scopes_supported: [...OIDC_SCOPES, ...[...resourceScopes].sort()],
    // OAuth 2.1: the code flow only; no implicit or password grant.
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [...GRANT_TYPES],
    // RFC 7636 / OAuth 2.1 §7.5.2: S256 only, `plain` is refused.
    code_challenge_methods_supported: ['S256'],
    // RFC 9449 §5.1: proofs of these algorithms bind tokens at the token endpoint.
    dpop_signing_alg_values_supported: [...DPOP_SIGNING_ALGS],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
    revocation_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
    introspection_endpoint_auth_methods_supported: clientAuthMethods,
    introspection_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
    // RFC 9207 §3: every authorization response carries `iss`.
    authorization_response_iss_parameter_supported: true,
    // draft-ietf-oauth-client-id-metadata-document §5: URL client ids are fetched (cimd.ts).
    client_id_metadata_document_supported: true,
    // OpenID Connect Discovery 1.0 §3.
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [deps.config.signingAlg],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    // The OIDC default for this one is true, so it must be said explicitly.
    request_uri_parameter_supported: false,
    // OpenID CIBA Core 1.0 §4: poll and ping (push is not offered), no signed requests or user codes.
    backchannel_authentication_endpoint: at(ENDPOINT_PATHS.backchannel),
    backchannel_token_delivery_modes_supported: ['poll', 'ping'],
    backchannel_user_code_parameter_supported: false,
    // RFC 9396 §10: the detail types some resource accepts.
    authorization_details_types_supported: await deps.detailTypes.names(),
    // draft-ietf-oauth-identity-assertion-authz-grant §6: ID-JAGs accepted (jwt-bearer, as the
    // resource's authorization server) and issued (token exchange, as the enterprise IdP).
    authorization_grant_profiles_supported: [ID_JAG_GRANT_PROFILE],
    identity_chaining_requested_token_types_supported: [ID_JAG_TOKEN_TYPE],
  }
}

/** RFC 8414 §3: metadata is read by browser-based clients too, so any origin may read it. */
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, OPTIONS',
  // MCP clients send MCP-Protocol-Version on discovery requests, which makes them preflighted.
  'Access-Control-Allow-Headers': '*',
  'Access-Control-Max-Age': '86400',
}

function preflight(): Response {
  return new Response(null, { status: 204, headers: CORS })
}

/**
 * The well-known metadata URLs. With an issuer that has a path (`https://h/tenant`), RFC 8414 §3.1
 * inserts the well-known segment before the path, OIDC Discovery §4 appends it, and the MCP
 * specification (2025-11-25 "Authorization Server Metadata Discovery") also tries the OIDC URL
 * with the segment inserted; all are served. The plain root URLs are served too, for a reverse
 * proxy that strips the issuer's path before forwarding.
 */
export function createMetadataRoutes(deps: MetadataDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const issuerPath = new URL(deps.config.issuer).pathname.replace(/\/$/, '')
  const paths = new Set([
    '/.well-known/oauth-authorization-server',
    '/.well-known/openid-configuration',
  ])
  if (issuerPath) {
    paths.add(`/.well-known/oauth-authorization-server${issuerPath}`)
    paths.add(`${issuerPath}/.well-known/openid-configuration`)
    paths.add(`/.well-known/openid-configuration${issuerPath}`)
  }
  const serve = async (c: Context<AppEnv>) =>
    c.json(await authorizationServerMetadata(deps), 200, {
      ...CORS,
      // Short: scopes_supported changes when a resource is added.
      'Cache-Control': 'public, max-age=60',
    })
  for (const path of paths) {
    app.get(path, serve)
    app.options(path, preflight)
  }
  // The JWKS answers GET from any origin (keys/jwks.ts); its preflight is answered here.
  app.options(ENDPOINT_PATHS.jwks, preflight)
  return app
}
