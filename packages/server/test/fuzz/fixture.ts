import { createHash } from 'node:crypto'
import fc from 'fast-check'
import pino from 'pino'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { ADMIN_ROLE } from '../../src/identity/roles.js'
import { listen, type RunningServer } from '../../src/server.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { CookieJar, hiddenField } from '../helpers/sign-in.js'

/**
 * A real Deputy for the fuzz suites: SQLite, listening on 127.0.0.1, with a person who is an
 * administrator (signed in, so the console and account pages are reached past their gate), an
 * admin API key, a public app, a confidential agent and a resource server. Rate limits are out
 * of reach so every generated request gets to the code it is aimed at, and every `error` log
 * line is kept so a 5xx can be reported with the error behind it.
 */

const SYSTEM = { type: 'system', id: 'fuzz' } as const
export const RESOURCE = 'http://127.0.0.1:9999/mcp'
export const REDIRECT = 'http://127.0.0.1:3000/callback'
export const ADMIN_PERSON = { email: 'root@example.com', password: 'correct horse battery' }

/** How long one request may take before it counts as a hang: a generous abort, not a timing target. */
export const REQUEST_TIMEOUT_MS = 10_000

/** Runs per property, and the seed: fixed unless FUZZ_RUNS / FUZZ_SEED say otherwise. */
export function fuzzSettings(defaultRuns: number): { numRuns: number; seed: number } {
  const runs = Number.parseInt(process.env.FUZZ_RUNS ?? '', 10)
  const seed = Number.parseInt(process.env.FUZZ_SEED ?? '', 10)
  return {
    numRuns: Number.isFinite(runs) && runs > 0 ? runs : defaultRuns,
    seed: Number.isFinite(seed) ? seed : 20261202,
  }
}

export interface FuzzTarget {
  deputy: TestDeputy
  server: RunningServer
  origin: string
  adminKey: string
  /** The signed-in administrator's cookies. */
  sessionCookie: string
  app: { clientId: string }
  agent: { clientId: string; secret: string }
  introspector: { clientId: string; secret: string }
  /** A confidential client registered for CIBA in poll mode. */
  ciba: { clientId: string; secret: string }
  /** The signed-in session's CSRF token. */
  csrfToken: string
  /** A sign-in page's cookie and form token, for posting the sign-in form. */
  login: { cookie: string; csrfToken: string }
  /** Real tokens, so generated requests also carry ones that verify. */
  tokens: { personAccess: string; refresh: string; agentAccess: string }
  /** Error log lines written since the last `takeErrors`. */
  takeErrors(): string[]
  stop(): Promise<void>
}

const LIMITS_OUT_OF_REACH = {
  tokenRateLimitPerClient: 0,
  tokenRateLimitPerAddress: 0,
  backchannelRateLimitPerClient: 0,
  backchannelRateLimitPerAddress: 0,
  signInRateLimit: 0,
  connectRateLimit: 0,
  registrationRateLimit: 1_000_000,
  clientMetadataFetchRateLimit: 1_000_000,
  authorizationRequestRateLimit: 1_000_000,
  loginMaxFailures: 1_000_000,
  loginMaxFailuresPerAddress: 1_000_000,
} as const

/** Starts the fuzz target. */
export async function startFuzzTarget(): Promise<FuzzTarget> {
  const errors: string[] = []
  const logger = pino(
    { level: 'error' },
    {
      write(line: string) {
        errors.push(line)
      },
    },
  )
  const deputy = await startTestDeputy({
    logger,
    config: { ...LIMITS_OUT_OF_REACH, issuer: 'http://127.0.0.1:8080' },
  })
  const { deps } = deputy
  await deps.resources.put(
    {
      uri: RESOURCE,
      name: 'Shop',
      scopes: { 'tools:read': 'See the catalogue', 'tools:write': 'Place orders' },
      isDefault: true,
    },
    SYSTEM,
  )
  await deps.users.create({ ...ADMIN_PERSON, name: 'Root', roles: [ADMIN_ROLE] }, SYSTEM)
  const app = (
    await deps.clients.register({ name: 'App', public: true, redirectUris: [REDIRECT] }, SYSTEM)
  ).client
  const agent = await deps.clients.register(
    {
      name: 'Agent',
      allowedScopes: ['tools:read', 'tools:write'],
      grantTypes: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
    },
    SYSTEM,
  )
  const introspector = await deps.clients.register(
    { name: 'Shop server', allowedScopes: ['deputy:introspect'] },
    SYSTEM,
  )
  const ciba = await deps.clients.register(
    {
      name: 'Approver',
      grantTypes: ['urn:openid:params:grant-type:ciba'],
      backchannelTokenDeliveryMode: 'poll',
      allowedScopes: ['tools:read'],
    },
    SYSTEM,
  )
  const adminKey = (await createAdminApiKeys(deps).create('fuzz', SYSTEM)).key
  const server = await listen(deputy, { port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${server.port}`
  const sessionCookie = await signIn(origin)
  const account = await fetch(`${origin}/account`, { headers: { cookie: sessionCookie } })
  const csrfToken = hiddenField(await account.text(), 'csrf_token')
  const loginJar = new CookieJar()
  const loginPage = await fetch(`${origin}/login`)
  loginJar.store(loginPage)
  const login = {
    csrfToken: hiddenField(await loginPage.text(), 'csrf_token'),
    cookie: loginJar.header(),
  }
  const person = await deps.users.findByEmail(ADMIN_PERSON.email)
  if (!person) throw new Error('the fuzz person was not stored')
  const scopes = ['openid', 'tools:read', 'tools:write']
  /** Redeems a fresh code of its own grant for the app, as /authorize and consent would issue it. */
  const personTokens = async () => {
    const grant = await deps.grants.create({
      userId: person.id,
      clientId: app.clientId,
      resource: RESOURCE,
      scopes,
    })
    const code = await deps.authorizationCodes.issue({
      grantId: grant.id,
      clientId: app.clientId,
      userId: person.id,
      redirectUri: REDIRECT,
      codeChallenge: createHash('sha256').update(VERIFIER).digest('base64url'),
      resource: RESOURCE,
      scopes,
      nonce: null,
      authTime: Date.now(),
    })
    return tokenRequest(origin, {
      grant_type: 'authorization_code',
      code,
      code_verifier: VERIFIER,
      redirect_uri: REDIRECT,
      client_id: app.clientId,
    })
  }
  // Two grants: refresh-token fuzzing may revoke its grant (reuse detection), never the other's.
  const person1 = await personTokens()
  const person2 = await personTokens()
  const agentTokens = await tokenRequest(
    origin,
    { grant_type: 'client_credentials', scope: 'tools:read' },
    `Basic ${Buffer.from(`${agent.client.clientId}:${agent.clientSecret}`).toString('base64')}`,
  )
  return {
    deputy,
    server,
    origin,
    adminKey,
    sessionCookie,
    app: { clientId: app.clientId },
    agent: { clientId: agent.client.clientId, secret: agent.clientSecret as string },
    introspector: {
      clientId: introspector.client.clientId,
      secret: introspector.clientSecret as string,
    },
    ciba: { clientId: ciba.client.clientId, secret: ciba.clientSecret as string },
    csrfToken,
    login,
    tokens: {
      personAccess: person1.access_token,
      refresh: person2.refresh_token ?? '',
      agentAccess: agentTokens.access_token,
    },
    takeErrors: () => errors.splice(0),
    async stop() {
      await server.shutdown()
      await deputy.database.dispose()
    },
  }
}

/** RFC 7636 Appendix B's verifier. */
export const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'

async function tokenRequest(
  origin: string,
  params: Record<string, string>,
  authorization?: string,
): Promise<{ access_token: string; refresh_token?: string }> {
  const response = await fetch(`${origin}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(authorization && { authorization }),
    },
    body: new URLSearchParams(params),
  })
  if (response.status !== 200) throw new Error(`token request answered ${await response.text()}`)
  return (await response.json()) as { access_token: string; refresh_token?: string }
}

async function signIn(origin: string): Promise<string> {
  const jar = new CookieJar()
  const page = await fetch(`${origin}/login`)
  jar.store(page)
  const csrf = hiddenField(await page.text(), 'csrf_token')
  const response = await fetch(`${origin}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: jar.header(),
      origin,
    },
    body: new URLSearchParams({ csrf_token: csrf, ...ADMIN_PERSON }),
  })
  if (response.status !== 303) throw new Error(`sign-in answered ${response.status}`)
  jar.store(response)
  return jar.header()
}

/** One generated request, as sent. */
export interface FuzzRequest {
  method: string
  path: string
  headers: Record<string, string>
  body?: string | Uint8Array
}

/** What went wrong with one answer, or nothing. */
export type Finding = string | undefined

/** Stack frames or source paths: nothing of the server's insides may reach a caller. */
const STACK_TRACE =
  /\n\s+at\s+\S.*[(:]\d+:\d+\)?|(?:file:\/\/|\/src\/|\/dist\/|node_modules\/)\S+\.[cm]?[jt]sx?\b/

/**
 * Sends one request over the socket and checks the answer: it comes within the timeout, is not
 * a 5xx, and shows no stack trace. Returns the answer's status, content type and body text.
 */
export async function sendAndCheck(
  target: FuzzTarget,
  request: FuzzRequest,
): Promise<{ status: number; type: string; text: string; finding: Finding }> {
  let response: Response
  try {
    response = await fetch(`${target.origin}${request.path}`, {
      method: request.method,
      headers: request.headers,
      body: request.body as BodyInit | undefined,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    return { status: 0, type: '', text: '', finding: `no answer (${reason})` }
  }
  let text: string
  try {
    text = await response.text()
  } catch (err) {
    return { status: response.status, type: '', text: '', finding: `body not read (${err})` }
  }
  const type = response.headers.get('content-type') ?? ''
  const errors = target.takeErrors()
  if (response.status >= 500) {
    return {
      status: response.status,
      type,
      text,
      finding: `answered ${response.status}: ${text.slice(0, 300)}\n${errors.join('\n').slice(0, 2000)}`,
    }
  }
  if (STACK_TRACE.test(text)) {
    return {
      status: response.status,
      type,
      text,
      finding: `stack trace in body: ${text.slice(0, 500)}`,
    }
  }
  return { status: response.status, type, text, finding: undefined }
}

/** A short description of a request for a failure message (bodies cut). */
export function describeRequest(request: FuzzRequest): string {
  const body =
    request.body === undefined
      ? ''
      : typeof request.body === 'string'
        ? ` body(${request.body.length})=${JSON.stringify(request.body.slice(0, 200))}`
        : ` bytes(${request.body.length})`
  const headers = Object.entries(request.headers)
    .map(([k, v]) => `${k}: ${v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v}`)
    .join('; ')
  return `${request.method} ${request.path.slice(0, 300)} [${headers}]${body}`
}

/** The OAuth endpoints (path and method), whose JSON errors must carry an OAuth error code. */
export const OAUTH_ENDPOINTS: Record<string, string> = {
  '/token': 'POST',
  '/introspect': 'POST',
  '/revoke': 'POST',
  '/register': 'POST',
  '/bc-authorize': 'POST',
}

/** RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 7591 §3.2.2, RFC 8707, RFC 9396, RFC 9449, CIBA. */
const OAUTH_CODES = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'unsupported_token_type',
  'invalid_scope',
  'invalid_target',
  'access_denied',
  'invalid_token',
  'insufficient_scope',
  'invalid_redirect_uri',
  'invalid_client_metadata',
  'invalid_software_statement',
  'unapproved_software_statement',
  'invalid_authorization_details',
  'expired_login_hint_token',
  'unknown_user_id',
  'invalid_binding_message',
  'authorization_pending',
  'slow_down',
  'expired_token',
  'connection_required',
  'invalid_dpop_proof',
  'use_dpop_nonce',
])

/** The finding for an OAuth endpoint's JSON error without an OAuth error code, or nothing. */
export function oauthCodeFinding(answer: { status: number; type: string; text: string }): Finding {
  if (answer.status < 400 || !answer.type.includes('json')) return
  // The body limit in front of every route answers before any endpoint is chosen.
  if (answer.status === 413) return
  let code: unknown
  try {
    code = (JSON.parse(answer.text) as { error?: unknown }).error
  } catch {
    return `JSON error body does not parse: ${answer.text.slice(0, 200)}`
  }
  if (typeof code !== 'string' || !OAUTH_CODES.has(code)) {
    return `error ${JSON.stringify(code)} is not an OAuth error code: ${answer.text.slice(0, 200)}`
  }
  return undefined
}

/**
 * Runs a property over generated requests and returns its findings (at most one: the run stops
 * at the first, without shrinking, which would resend hundreds of requests). Anything else that
 * fails (a generator, the harness) is thrown, never taken for a pass.
 */
export async function findingsOf(
  requests: fc.Arbitrary<FuzzRequest>,
  check: (request: FuzzRequest) => Promise<Finding>,
  settings: { numRuns: number; seed: number },
): Promise<string[]> {
  const findings: string[] = []
  try {
    await fc.assert(
      fc.asyncProperty(requests, async (request) => {
        const finding = await check(request)
        if (finding) findings.push(`${finding}\n  ${describeRequest(request)}`)
        return finding === undefined
      }),
      { ...settings, endOnFailure: true },
    )
  } catch (err) {
    if (findings.length === 0) throw err
  }
  return findings
}
