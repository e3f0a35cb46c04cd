import { Hono } from 'hono'
import { z } from 'zod'
import type { RefusalLog } from '../audit/refusals.js'
import type { Actor } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { addressKey, type RateLimits } from '../http/rate-limits.js'
import type { Clock } from '../lib/clock.js'
import { isDeputyError } from '../lib/errors.js'
import { JsonInputError, parseJsonInput } from '../lib/json-input.js'
import { CIBA_GRANT_TYPE, type Client, type Clients } from './clients.js'
import { OAuthError, oauthErrorResponse, withinRateLimit } from './errors.js'
import { redirectUriProblem } from './redirect-uris.js'

/** Who registers a client dynamically: an anonymous caller, as the audit chain names it. */
const DYNAMIC_REGISTRATION: Actor = {
  type: 'system',
  id: 'dynamic-registration',
  label: 'RFC 7591 dynamic client registration',
}

function metadataError(description: string): OAuthError {
  return new OAuthError('invalid_client_metadata', description)
}

/**
 * RFC 7591 §2: the client metadata Deputy understands. Unknown fields are ignored (§3.1: "the
 * authorization server MUST ignore any client metadata sent by the client that it does not
 * understand"), including `client_id` and `client_secret`: the server assigns those (§3.2.1,
 * RFC 9700 §4.15), a client never chooses them.
 */
const RegistrationRequestSchema = z.looseObject({
  redirect_uris: z.array(z.string().max(2000)).max(20, 'may list at most 20 URIs').optional(),
  token_endpoint_auth_method: z
    .enum(['none', 'client_secret_basic', 'client_secret_post'], {
      error: 'must be none, client_secret_basic or client_secret_post',
    })
    // RFC 7591 §2: the default is client_secret_basic.
    .default('client_secret_basic'),
  grant_types: z
    .array(
      z.enum(['authorization_code', 'refresh_token', CIBA_GRANT_TYPE], {
        error: `may list authorization_code, refresh_token and ${CIBA_GRANT_TYPE}`,
      }),
    )
    .min(1, 'must not be empty')
    .optional(),
  response_types: z.array(z.literal('code', { error: 'may only list "code"' })).optional(),
  // OpenID CIBA Core 1.0 §4: the client's delivery mode and, for ping, its notification endpoint.
  backchannel_token_delivery_mode: z
    .enum(['poll', 'ping'], { error: 'must be poll or ping' })
    .optional(),
  backchannel_client_notification_endpoint: z.string().max(2048).optional(),
  client_name: z.string().trim().min(1, 'must not be empty').max(200).optional(),
  client_uri: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  logo_uri: z.url({ protocol: /^https$/, error: 'must be an https URL' }).optional(),
  application_type: z.enum(['web', 'native'], { error: 'must be web or native' }).optional(),
  scope: z.string().max(2000).optional(),
  software_id: z.string().max(200).optional(),
  software_version: z.string().max(200).optional(),
})

/** The registration response of RFC 7591 §3.2.1: the id, the secret once, and what was registered. */
function registrationResponse(client: Client, secret: string | undefined): Record<string, unknown> {
  return {
    client_id: client.clientId,
    ...(secret
      ? {
          client_secret: secret,
          // §3.2.1: REQUIRED with a secret; 0 means it does not expire.
          client_secret_expires_at: client.expiresAt ? Math.floor(client.expiresAt / 1000) : 0,
        }
      : {}),
    client_id_issued_at: Math.floor(Date.parse(client.createdAt) / 1000),
    client_name: client.name,
    redirect_uris: client.redirectUris,
    grant_types: client.grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    application_type: client.applicationType,
    ...(client.clientUri ? { client_uri: client.clientUri } : {}),
    ...(client.logoUri ? { logo_uri: client.logoUri } : {}),
    ...(client.backchannelTokenDeliveryMode
      ? { backchannel_token_delivery_mode: client.backchannelTokenDeliveryMode }
      : {}),
    ...(client.backchannelClientNotificationEndpoint
      ? { backchannel_client_notification_endpoint: client.backchannelClientNotificationEndpoint }
      : {}),
  }
}

/** RFC 9700 §2.6: CORS may be enabled at the registration endpoint (browser-based MCP clients). */
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Authorization, MCP-Protocol-Version',
  'Access-Control-Max-Age': '86400',
}

/**
 * Dynamic Client Registration (RFC 7591) at POST /register, for clients that still use it (MCP
 * 2026-07-28 deprecates it in favour of metadata documents). Switched off with
 * `dynamicRegistration: false`: then the route does not exist at all.
 */
export function createRegistrationRoutes(deps: {
  config: Pick<ResolvedConfig, 'dynamicRegistration' | 'dynamicRegistrationTtlSeconds'>
  clock: Clock
  clients: Pick<Clients, 'register'>
  refusals: Pick<RefusalLog, 'record'>
  rateLimits: Pick<RateLimits, 'take'>
}): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  if (!deps.config.dynamicRegistration) return app
  app.options('/register', () => new Response(null, { status: 204, headers: CORS }))

  app.post('/register', async (c) => {
    const requestId = c.get('requestId')
    try {
      // Each registration is a row anyone may write: a bucket per client address and hour,
      // shared by the replicas, so one address cannot fill the database.
      const address = addressKey(c.get('clientAddress'))
      await withinRateLimit(() => deps.rateLimits.take('register', address), 'register')
      const parsed = await parseRequest(c.req.raw)
      const method = parsed.token_endpoint_auth_method
      const grantTypes = parsed.grant_types ?? ['authorization_code', 'refresh_token']
      if (!grantTypes.includes('authorization_code'))
        throw metadataError('grant_types must include authorization_code')
      const redirectUris = parsed.redirect_uris ?? []
      // RFC 7591 §2: redirect flows MUST register redirect URIs; §3.2.2 names the error.
      if (redirectUris.length === 0)
        throw new OAuthError('invalid_redirect_uri', 'redirect_uris is required')
      for (const uri of redirectUris) {
        const problem = redirectUriProblem(uri)
        if (problem)
          throw new OAuthError(
            'invalid_redirect_uri',
            `redirect URI ${JSON.stringify(uri.slice(0, 200))} ${problem}`,
          )
      }
      // OIDC Registration §2: native apps use loopback or private-use redirects, so a client that
      // sends no application_type but has only such redirects is recorded as native.
      const applicationType =
        parsed.application_type ??
        (redirectUris.every((u) => !u.startsWith('https:')) ? 'native' : 'web')
      const ttl = deps.config.dynamicRegistrationTtlSeconds
      const expiresAt = ttl ? deps.clock.now().getTime() + ttl * 1000 : null
      let created: Awaited<ReturnType<typeof deps.clients.register>>
      try {
        created = await deps.clients.register(
          {
            name: parsed.client_name ?? 'Unnamed client',
            redirectUris,
            grantTypes,
            tokenEndpointAuthMethod: method,
            public: method === 'none',
            applicationType,
            clientUri: parsed.client_uri,
            logoUri: parsed.logo_uri,
            backchannelTokenDeliveryMode: parsed.backchannel_token_delivery_mode,
            backchannelClientNotificationEndpoint: parsed.backchannel_client_notification_endpoint,
          },
          DYNAMIC_REGISTRATION,
          {
            kind: 'dynamic',
            expiresAt,
            requestId,
            metadata: {
              ...(parsed.software_id ? { software_id: parsed.software_id } : {}),
              ...(parsed.software_version ? { software_version: parsed.software_version } : {}),
              ...(parsed.scope ? { scope: parsed.scope } : {}),
            },
          },
        )
      } catch (err) {
        if (isDeputyError(err) && err.status < 500) throw metadataError(err.message)
        throw err
      }
      return c.json(registrationResponse(created.client, created.clientSecret), 201, {
        ...CORS,
        'Cache-Control': 'no-store',
        Pragma: 'no-cache',
      })
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err
      // Anyone can send refused registrations: repeats are summarised (audit/refusals.ts).
      await deps.refusals.record({
        type: 'client.registration-refused',
        actor: DYNAMIC_REGISTRATION,
        decision: 'deny',
        reason: `${err.code}: ${err.description}`,
        requestId,
      })
      const response = oauthErrorResponse(err)
      for (const [name, value] of Object.entries(CORS)) response.headers.set(name, value)
      return response
    }
  })
  return app
}

/** RFC 7591 §3: the request is a JSON object sent as application/json. */
async function parseRequest(request: Request): Promise<z.output<typeof RegistrationRequestSchema>> {
  const type = request.headers.get('content-type') ?? ''
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw metadataError('the request must be application/json')
  let body: unknown
  try {
    body = parseJsonInput(await request.text())
  } catch (err) {
    if (err instanceof JsonInputError) throw metadataError(err.message)
    throw err
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw metadataError('the request body must be a JSON object')
  const result = RegistrationRequestSchema.safeParse(body)
  if (!result.success) {
    const issue = result.error.issues[0]
    const field = issue?.path.map(String).join('.') || 'the request body'
    throw metadataError(`${field} ${issue?.message ?? 'is invalid'}`)
  }
  return result.data
}
