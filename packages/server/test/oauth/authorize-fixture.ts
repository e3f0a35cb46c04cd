import { createHash, randomBytes } from 'node:crypto'
import type { Client } from '../../src/oauth/clients.js'
import type { ClientKind } from '../../src/store/schema.js'
import type { TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'

/** The issuer the test Deputy is configured with; `iss` must equal it exactly. */
export const ISSUER = 'http://localhost:8080'
export const SHOP = 'https://shop.example/mcp'
export const NOTES = 'https://notes.example/mcp'
export const ALICE = {
  email: 'alice@example.com',
  name: 'Alice Example',
  password: 'correct horse battery',
}
export const BOB = {
  email: 'bob@example.com',
  name: 'Bob Example',
  password: 'another good passphrase',
}
const SYSTEM = { type: 'system', id: 'test' } as const

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

/** A PKCE pair (RFC 7636 §4.1–4.2). */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export interface Fixture {
  deputy: TestDeputy
  clock: ReturnType<typeof manualClock>
  /** Pre-registered public client with one redirect URI, https://app.example/cb. */
  app: Client
  /** Pre-registered native client with a loopback redirect, http://127.0.0.1/cb. */
  native: Client
  /** A client that registered itself (RFC 7591): nobody vetted its redirect URI. */
  dynamic: Client
  /** A client with two redirect URIs, so it must always say which one. */
  twoRedirects: Client
}

/** Adds a client row directly, for kinds the registry creates elsewhere (DCR, metadata documents). */
export async function insertClient(
  deputy: TestDeputy,
  input: { clientId: string; name: string; kind: ClientKind; redirectUris: string[] },
): Promise<Client> {
  const now = deputy.deps.clock.now().getTime()
  await deputy.deps.db
    .insertInto('clients')
    .values({
      client_id: input.clientId,
      kind: input.kind,
      name: input.name,
      status: 'active',
      redirect_uris: JSON.stringify(input.redirectUris),
      grant_types: JSON.stringify(['authorization_code', 'refresh_token']),
      token_endpoint_auth_method: 'none',
      secret_hash: null,
      jwks: null,
      jwks_uri: null,
      allowed_scopes: null,
      application_type: 'web',
      client_uri: null,
      logo_uri: null,
      metadata: '{}',
      // Far in the future, so a metadata-document client is served from its cached row.
      expires_at: now + 365 * 24 * 3600_000,
      created_at: now,
      updated_at: now,
    })
    .execute()
  const client = await deputy.deps.clients.get(input.clientId)
  if (!client) throw new Error('client not stored')
  return client
}

/** A Deputy with two people, two resources (shop is the default) and a few clients. */
export async function startFixture(options: { database?: TestDatabase } = {}): Promise<Fixture> {
  const clock = manualClock()
  const deputy = await startTestDeputy({ clock, ...options })
  const { deps } = deputy
  await deps.users.create(ALICE, SYSTEM)
  await deps.users.create(BOB, SYSTEM)
  await deps.resources.put(
    {
      uri: SHOP,
      name: 'Example Shop',
      scopes: { 'shop:read': 'See your past orders.', 'shop:order': 'Place orders in your name.' },
      isDefault: true,
    },
    SYSTEM,
  )
  await deps.resources.put(
    { uri: NOTES, name: 'Notes', scopes: { 'notes:read': 'Read your notes.' } },
    SYSTEM,
  )
  const register = async (name: string, redirectUris: string[]) =>
    (await deps.clients.register({ name, redirectUris, public: true }, SYSTEM)).client
  return {
    deputy,
    clock,
    app: await register('Shop Assistant', ['https://app.example/cb']),
    native: await register('Desktop Agent', ['http://127.0.0.1/cb']),
    twoRedirects: await register('Two Doors', ['https://two.example/a', 'https://two.example/b']),
    dynamic: await insertClient(deputy, {
      clientId: 'dyn_selfmade',
      name: 'Self-made Agent',
      kind: 'dynamic',
      redirectUris: ['https://dyn.example/cb'],
    }),
  }
}

/** The query of an authorization request, with a fresh valid PKCE challenge unless overridden. */
export function authorizeQuery(
  client: Pick<Client, 'clientId' | 'redirectUris'>,
  overrides: Record<string, string | null> = {},
): string {
  const params: Record<string, string | null> = {
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUris[0] ?? null,
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
    state: 'st-123',
    scope: 'shop:read',
    ...overrides,
  }
  const query = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== null) query.append(k, v)
  return query.toString()
}

export type Browser = ReturnType<typeof browser>

/** A browser-like client signed in through the real sign-in form. */
export async function signedIn(deputy: TestDeputy, person = ALICE): Promise<Browser> {
  const b = browser(deputy)
  const response = await b.signIn(person.email, person.password)
  if (response.status !== 303) throw new Error(`sign-in failed with ${response.status}`)
  return b
}

/** The parameters of a redirect's Location, and the Location without its query. */
export function redirected(response: Response): { base: string; params: URLSearchParams } {
  const location = response.headers.get('location')
  if (!location) throw new Error(`expected a redirect, got ${response.status}`)
  const url = new URL(location, ISSUER)
  return { base: `${url.origin}${url.pathname}`, params: url.searchParams }
}

/** Submits the consent form on a consent page. */
export async function decide(
  b: Browser,
  consentHtml: string,
  decision: 'allow' | 'deny',
  overrides: Record<string, string> = {},
): Promise<Response> {
  return b.post('/authorize/consent', {
    request: hiddenField(consentHtml, 'request'),
    csrf_token: hiddenField(consentHtml, 'csrf_token'),
    decision,
    ...overrides,
  })
}

/** Audit events of a type, oldest first. */
export async function events(deputy: TestDeputy, type: string) {
  const rows = await deputy.deps.db
    .selectFrom('audit_events')
    .selectAll()
    .where('type', '=', type)
    .orderBy('seq')
    .execute()
  return rows as Record<string, unknown>[]
}
