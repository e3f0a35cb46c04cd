import type { Actor } from '../../src/audit/types.js'
import type { ConfigInput } from '../../src/config/schema.js'
import type { CreateDeputyOptions } from '../../src/deputy.js'
import { listen, type RunningServer } from '../../src/server.js'
import type { TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { CookieJar, hiddenField } from '../helpers/sign-in.js'
import { freePort } from '../interop/fixture.js'

// A real Deputy on loopback for the approvals inbox tests: two people, a resource with an
// ordinary and a high-risk detail type, a confidential CIBA client, and a clock the tests can move
// (for the fresh sign-in a high-risk approval needs).

export const ADMIN: Actor = { type: 'system', id: 'test' }
export const RESOURCE = 'https://trading.example/mcp'
export const PAYMENT = {
  type: 'payment_initiation',
  instructedAmount: { amount: '120.00', currency: 'EUR' },
  creditorName: 'ACME Shirts',
}
/** The resource the approvals tests ask for: a trading MCP server. */
export const TRADING = {
  uri: RESOURCE,
  name: 'Trading',
  scopes: { 'stock:trade': 'Trade stocks for you' },
  isDefault: true,
}
/** The RAR detail type of a PAYMENT, as the resource registers it. */
export const PAYMENT_INITIATION = {
  resource: RESOURCE,
  type: 'payment_initiation',
  description: 'A payment',
  template: 'Pay {instructedAmount.amount} {instructedAmount.currency} to {creditorName}',
  schema: {
    type: 'object',
    properties: {
      type: { const: 'payment_initiation' },
      instructedAmount: {
        type: 'object',
        properties: { amount: { type: 'string' }, currency: { type: 'string' } },
        required: ['amount', 'currency'],
      },
      creditorName: { type: 'string' },
    },
    required: ['type', 'instructedAmount', 'creditorName'],
  },
}
export const TRANSFER = { type: 'account_transfer', amount: '9000.00', to: 'Mallory Ltd' }
export const PASSWORDS = { alice: 'correct horse battery', bob: 'another fine password' }

export interface InboxFixture {
  deputy: TestDeputy
  server: RunningServer
  /** The issuer, `http://localhost:<port>` (Chromium keeps `__Host-` cookies on localhost). */
  origin: string
  /** The same server by address, for requests from the test itself. */
  direct: string
  alice: { id: string; email: string }
  bob: { id: string; email: string }
  ciba: { clientId: string; secret: string }
  /** Moves Deputy's clock forward. */
  advance(ms: number): void
  /** POST /bc-authorize for a person (default Alice); returns the auth_req_id and the request's id. */
  ask(extra?: Record<string, string>): Promise<{ authReqId: string; id: string }>
  /** One CIBA poll at /token. */
  token(authReqId: string): Promise<{ status: number; body: Record<string, unknown> }>
  /** A signed-in HTTP client (real requests, cookies kept). */
  signedIn(who: 'alice' | 'bob'): Promise<HttpBrowser>
  close(): Promise<void>
}

/** Real HTTP requests with a cookie jar, the way a browser would for one origin. */
export function httpBrowser(origin: string) {
  const jar = new CookieJar()
  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (jar.cookies.size > 0) headers.set('cookie', jar.header())
    const response = await fetch(`${origin}${path}`, { ...init, headers, redirect: 'manual' })
    jar.store(response)
    return response
  }
  return {
    jar,
    request,
    get: (path: string) => request(path),
    post: (path: string, fields: Record<string, string>) =>
      request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      }),
    async signIn(email: string, password: string): Promise<Response> {
      const login = await request('/login?fresh')
      const csrf = hiddenField(await login.text(), 'csrf_token')
      return this.post('/login', { csrf_token: csrf, email, password })
    },
  }
}

export type HttpBrowser = ReturnType<typeof httpBrowser>

export async function startInboxFixture(
  options: { config?: ConfigInput; database?: TestDatabase } & CreateDeputyOptions = {},
): Promise<InboxFixture> {
  let offset = 0
  const clock = { now: () => new Date(Date.now() + offset) }
  const port = await freePort()
  const origin = `http://localhost:${port}`
  const deputy = await startTestDeputy({
    clock,
    ...options,
    config: {
      issuer: origin,
      port,
      backchannelPollIntervalSeconds: 1,
      backchannelMaxPendingPerClientAndPerson: 50,
      dangerouslyAllowHttpLoopbackNotifications: true,
      ...options.config,
    },
  })
  const server = await listen(deputy, { port, host: '127.0.0.1' })
  const direct = `http://127.0.0.1:${port}`
  const { deps } = deputy
  const a = await deps.users.create(
    { email: 'alice@example.com', name: 'Alice', password: PASSWORDS.alice },
    ADMIN,
  )
  const b = await deps.users.create(
    { email: 'bob@example.com', name: 'Bob', password: PASSWORDS.bob },
    ADMIN,
  )
  await deps.resources.put(TRADING, ADMIN)
  await deps.detailTypes.put(PAYMENT_INITIATION, ADMIN)
  await deps.detailTypes.put(
    {
      resource: RESOURCE,
      type: 'account_transfer',
      description: 'A transfer out of the account',
      template: 'Transfer {amount} to {to}',
      highRisk: true,
      schema: {
        type: 'object',
        properties: {
          type: { const: 'account_transfer' },
          amount: { type: 'string' },
          to: { type: 'string' },
        },
        required: ['type', 'amount', 'to'],
      },
    },
    ADMIN,
  )
  const created = await deps.clients.register(
    { name: 'Trading agent', grantTypes: ['urn:openid:params:grant-type:ciba'] },
    ADMIN,
  )
  const ciba = { clientId: created.client.clientId, secret: created.clientSecret as string }
  const basic = `Basic ${btoa(`${ciba.clientId}:${ciba.secret}`)}`

  async function form(path: string, params: Record<string, string>) {
    const res = await fetch(`${direct}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams(params),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  return {
    deputy,
    server,
    origin,
    direct,
    alice: { id: a.id, email: a.email },
    bob: { id: b.id, email: b.email },
    ciba,
    advance(ms) {
      offset += ms
    },
    async ask(extra = {}) {
      const answer = await form('/bc-authorize', {
        scope: 'openid stock:trade',
        login_hint: a.email,
        authorization_details: JSON.stringify([PAYMENT]),
        ...extra,
      })
      if (answer.status !== 200) throw new Error(`bc-authorize: ${JSON.stringify(answer.body)}`)
      const authReqId = answer.body.auth_req_id as string
      const login = extra.login_hint ?? a.email
      const person = login === b.email ? b.id : a.id
      const [latest] = await deps.approvals.listForUser(person, 'pending', 1)
      return { authReqId, id: latest?.id as string }
    },
    token: (authReqId) =>
      form('/token', { grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: authReqId }),
    async signedIn(who) {
      const client = httpBrowser(direct)
      const user = who === 'alice' ? a : b
      const answer = await client.signIn(user.email, PASSWORDS[who])
      if (answer.status !== 303) throw new Error(`sign-in: ${answer.status}`)
      return client
    },
    async close() {
      await server.shutdown()
      await deputy.database.dispose()
    },
  }
}
