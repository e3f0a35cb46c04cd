import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import type { ConfigInput } from '../../src/config/schema.js'
import { sha256 } from '../../src/lib/random.js'
import type { Client } from '../../src/oauth/clients.js'
import type { TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

export const ADMIN = { type: 'system', id: 'test' } as const
export const RESOURCE = 'http://127.0.0.1:9999/mcp'
export const OTHER_RESOURCE = 'http://127.0.0.1:9998/api'
export const REDIRECT = 'http://127.0.0.1:3000/callback'
export const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'

/** A clock the test moves by hand. */
export function manualClock(start = Date.parse('2026-03-01T09:00:00Z')) {
  let now = start
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000
    },
  }
}

export interface World {
  deputy: TestDeputy
  clock: ReturnType<typeof manualClock>
  alice: { id: string }
  /** A public client (auth method none) with authorization_code + refresh_token. */
  app: Client
  /** Another public client. */
  otherApp: Client
  /** A confidential client_credentials agent (client_secret_basic). */
  agent: { client: Client; secret: string }
  /** A resource server allowed to introspect any token. */
  introspector: { client: Client; secret: string }
}

/** A Deputy with one person, two resources and a few clients. */
export async function createWorld(
  options: { database?: TestDatabase; config?: ConfigInput } = {},
): Promise<World> {
  const clock = manualClock()
  const deputy = await startTestDeputy({
    clock,
    database: options.database,
    config: options.config,
  })
  const { deps } = deputy
  const now = clock.now().getTime()
  await deps.db
    .insertInto('roles')
    .values({ name: 'shopper', description: 'buys', created_at: now })
    .execute()
  await deps.db
    .insertInto('permissions')
    .values({ name: 'orders:create', description: 'orders', created_at: now })
    .execute()
  await deps.db
    .insertInto('role_permissions')
    .values({ role: 'shopper', permission: 'orders:create' })
    .execute()
  const alice = await deps.users.create(
    {
      email: 'alice@example.com',
      name: 'Alice Example',
      roles: ['shopper'],
      claims: { favorite_song: 'Bohemian Rhapsody' },
    },
    ADMIN,
  )
  await deps.resources.put(
    {
      uri: RESOURCE,
      name: 'Shop',
      scopes: { 'tools:read': 'See the catalogue', 'tools:write': 'Place orders' },
      claimsTemplate: ['name', 'email', 'roles', 'permissions', 'favorite_song'],
      isDefault: true,
    },
    ADMIN,
  )
  await deps.resources.put({ uri: OTHER_RESOURCE, scopes: { 'api:read': 'Read the API' } }, ADMIN)
  const app = (
    await deps.clients.register({ name: 'Claude', public: true, redirectUris: [REDIRECT] }, ADMIN)
  ).client
  const otherApp = (
    await deps.clients.register({ name: 'Other', public: true, redirectUris: [REDIRECT] }, ADMIN)
  ).client
  const agentCreated = await deps.clients.register(
    { name: 'Agent', allowedScopes: ['tools:read', 'tools:write', 'api:read'] },
    ADMIN,
  )
  const introspectorCreated = await deps.clients.register(
    { name: 'Shop server', allowedScopes: ['deputy:introspect'] },
    ADMIN,
  )
  return {
    deputy,
    clock,
    alice: { id: alice.id },
    app,
    otherApp,
    agent: { client: agentCreated.client, secret: agentCreated.clientSecret as string },
    introspector: {
      client: introspectorCreated.client,
      secret: introspectorCreated.clientSecret as string,
    },
  }
}

/** An approved authorization for `client`, as /authorize + consent would leave it: a grant and a code. */
export async function issueCode(
  world: World,
  options: {
    client?: Client
    scopes?: string[]
    verifier?: string
    nonce?: string | null
    resource?: string
  } = {},
): Promise<{ code: string; grantId: string }> {
  const { deps } = world.deputy
  const client = options.client ?? world.app
  const scopes = options.scopes ?? ['openid', 'profile', 'email', 'tools:read', 'tools:write']
  const resource = options.resource ?? RESOURCE
  const grant = await deps.grants.create({
    userId: world.alice.id,
    clientId: client.clientId,
    resource,
    scopes,
  })
  const code = await deps.authorizationCodes.issue({
    grantId: grant.id,
    clientId: client.clientId,
    userId: world.alice.id,
    redirectUri: REDIRECT,
    codeChallenge: sha256(options.verifier ?? VERIFIER),
    resource,
    scopes,
    nonce: options.nonce === undefined ? 'n-0S6_WzA2Mj' : options.nonce,
    authTime: world.clock.now().getTime() - 5000,
  })
  return { code, grantId: grant.id }
}

/** POSTs a form to an endpoint of the in-process app. */
export async function postForm(
  world: World,
  path: string,
  params: Record<string, string> | string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return await world.deputy.app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof params === 'string' ? params : new URLSearchParams(params).toString(),
  })
}

/** RFC 6749 §2.3.1 Basic credentials. */
export function basic(clientId: string, secret: string): Record<string, string> {
  const encode = (v: string) => encodeURIComponent(v)
  return {
    authorization: `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString('base64')}`,
  }
}

/** Redeems a code for the public app, the way a real client would. */
export function redeem(
  world: World,
  code: string,
  extra: Record<string, string> = {},
  client: Client = world.app,
): Promise<Response> {
  return postForm(world, '/token', {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    code_verifier: VERIFIER,
    client_id: client.clientId,
    ...extra,
  })
}

export function refresh(
  world: World,
  refreshToken: string,
  extra: Record<string, string> = {},
  client: Client = world.app,
): Promise<Response> {
  return postForm(world, '/token', {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: client.clientId,
    ...extra,
  })
}

/** Introspects a token as the privileged resource server. */
export async function introspect(world: World, token: string): Promise<Record<string, unknown>> {
  const response = await postForm(
    world,
    '/introspect',
    { token },
    basic(world.introspector.client.clientId, world.introspector.secret),
  )
  if (response.status !== 200) throw new Error(`introspection answered ${response.status}`)
  return (await response.json()) as Record<string, unknown>
}

/** Verifies a JWT against Deputy's published keys, as a resource server would. */
export async function verifyWithJwks(world: World, token: string, typ: string) {
  const jwks = createLocalJWKSet(await world.deputy.deps.signingKeys.jwks())
  const { payload } = await jwtVerify(token, jwks, {
    issuer: world.deputy.config.issuer,
    typ,
    currentDate: world.clock.now(),
  })
  return { payload, header: decodeProtectedHeader(token) }
}

/** The audit records of one type, oldest first. */
export async function auditOf(world: World, type: string) {
  const rows = await world.deputy.deps.db
    .selectFrom('audit_events')
    .selectAll()
    .where('type', '=', type)
    .orderBy('seq')
    .execute()
  return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }))
}

/** Asserts the headers every token-endpoint answer must carry (RFC 6749 §5.1, §5.2). */
export function expectOAuthJson(response: Response): void {
  if (!response.headers.get('content-type')?.startsWith('application/json')) {
    throw new Error(`content-type is ${response.headers.get('content-type')}`)
  }
  if (response.headers.get('cache-control') !== 'no-store') {
    throw new Error(`cache-control is ${response.headers.get('cache-control')}`)
  }
}

/** A successful token response's body (RFC 6749 §5.1). */
export interface Tokens {
  access_token: string
  refresh_token: string
  id_token: string
  scope: string
}

/** Asserts a 200 token response with the OAuth headers and returns its body. */
export async function tokensOf(response: Response): Promise<Tokens> {
  if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}`)
  expectOAuthJson(response)
  return (await response.json()) as Tokens
}

/** The `error` of an OAuth error response, after its headers are checked (RFC 6749 §5.2). */
export async function errorOf(response: Response): Promise<string> {
  expectOAuthJson(response)
  return ((await response.json()) as { error: string }).error
}

/**
 * Alice's grant as the client holds it after redeeming the code: its tokens. The public app by
 * default; with `secret`, a confidential `client` that authenticates with Basic.
 */
export async function startGrant(
  world: World,
  options: Parameters<typeof issueCode>[1] & { secret?: string } = {},
): Promise<Tokens & { grantId: string }> {
  const { code, grantId } = await issueCode(world, options)
  const client = options.client ?? world.app
  const response =
    options.secret === undefined
      ? await redeem(world, code, {}, client)
      : await postForm(
          world,
          '/token',
          {
            grant_type: 'authorization_code',
            code,
            redirect_uri: REDIRECT,
            code_verifier: VERIFIER,
          },
          basic(client.clientId, options.secret),
        )
  return { ...(await tokensOf(response)), grantId }
}
