import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decideApproval } from '../../src/approvals/decide.js'
import type { Actor } from '../../src/audit/types.js'
import { mintIdToken } from '../../src/oauth/id-token.js'
import { listen, type RunningServer } from '../../src/server.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { freePort } from '../interop/fixture.js'
import { ADMIN, PAYMENT, PAYMENT_INITIATION, RESOURCE, TRADING } from './inbox-fixture.js'

// OpenID CIBA Core 1.0 with RFC 9396 authorization details (issue 11 §1, §2), against a real
// Deputy on loopback, with openid-client's CIBA functions as the independent client (poll mode)
// and a real notification endpoint (ping mode). Every MUST gets its negative test.

interface Ping {
  authorization: string | undefined
  body: unknown
}

describe('CIBA with rich authorization details against a real Deputy (issue 11 §1, §2)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let issuer: string
  let alice: { id: string; email: string }
  let poller: { clientId: string; secret: string }
  let pinged: { clientId: string; secret: string }
  let plain: { clientId: string; secret: string }
  let notifications: Server
  const pings: Ping[] = []
  /** How many of the next pings the notification endpoint answers 503 (to show the retry). */
  let failPings = 0
  const person: Actor = { type: 'user', id: '' }

  beforeAll(async () => {
    notifications = createServer((req: IncomingMessage, res) => {
      let body = ''
      req.on('data', (chunk) => {
        body += chunk
      })
      req.on('end', () => {
        pings.push({ authorization: req.headers.authorization, body: JSON.parse(body || 'null') })
        if (failPings > 0) {
          failPings--
          res.writeHead(503).end()
        } else res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => notifications.listen(0, '127.0.0.1', resolve))
    const notifyUrl = `http://127.0.0.1:${(notifications.address() as AddressInfo).port}/ciba`

    const port = await freePort()
    issuer = `http://127.0.0.1:${port}`
    deputy = await startTestDeputy({
      config: {
        issuer,
        port,
        backchannelPollIntervalSeconds: 1,
        backchannelMaxPendingPerClientAndPerson: 3,
        dangerouslyAllowHttpLoopbackNotifications: true,
      },
    })
    server = await listen(deputy, { port, host: '127.0.0.1' })
    const { deps } = deputy
    const user = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
    alice = { id: user.id, email: user.email }
    person.id = user.id
    await deps.resources.put(TRADING, ADMIN)
    await deps.detailTypes.put(PAYMENT_INITIATION, ADMIN)
    const register = async (extra: Record<string, unknown>) => {
      const created = await deps.clients.register(
        { name: 'Trading agent', grantTypes: ['urn:openid:params:grant-type:ciba'], ...extra },
        ADMIN,
      )
      return { clientId: created.client.clientId, secret: created.clientSecret as string }
    }
    poller = await register({})
    pinged = await register({
      backchannelTokenDeliveryMode: 'ping',
      backchannelClientNotificationEndpoint: notifyUrl,
    })
    const other = await deps.clients.register(
      { name: 'Not CIBA', redirectUris: ['https://app.example/cb'] },
      ADMIN,
    )
    plain = { clientId: other.client.clientId, secret: other.clientSecret as string }
  }, 60_000)

  afterAll(async () => {
    await server?.shutdown()
    await deputy?.database.dispose()
    await new Promise((resolve) => notifications?.close(resolve))
  })

  const configure = (who: { clientId: string; secret: string }) =>
    client.discovery(
      new URL(issuer),
      who.clientId,
      undefined,
      client.ClientSecretBasic(who.secret),
      {
        execute: [client.allowInsecureRequests],
      },
    )

  async function backchannel(
    params: Record<string, string>,
    who: { clientId: string; secret: string } = poller,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${issuer}/bc-authorize`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${btoa(`${who.clientId}:${who.secret}`)}`,
      },
      body: new URLSearchParams(params),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  async function token(
    authReqId: string,
    who: { clientId: string; secret: string } = poller,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${btoa(`${who.clientId}:${who.secret}`)}`,
      },
      body: new URLSearchParams({
        grant_type: 'urn:openid:params:grant-type:ciba',
        auth_req_id: authReqId,
      }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  const ask = (extra: Record<string, string> = {}, who = poller) =>
    backchannel({ scope: 'openid stock:trade', login_hint: alice.email, ...extra }, who)

  /** The approval a fresh request created (the newest for Alice). */
  async function newest(): Promise<string> {
    const [latest] = await deputy.deps.approvals.listForUser(alice.id, 'pending', 1)
    return latest?.id as string
  }

  const decide = (id: string, decision: 'approved' | 'denied') =>
    decideApproval(deputy.deps, { id, decision, actor: person, shownDigest: 'sha-256:test' })

  it('advertises the backchannel endpoint, the delivery modes, the grant type and the detail types', async () => {
    const config = await configure(poller)
    const metadata = config.serverMetadata()
    expect(metadata.backchannel_authentication_endpoint).toBe(`${issuer}/bc-authorize`)
    expect(metadata.backchannel_token_delivery_modes_supported).toEqual(['poll', 'ping'])
    // CIBA §4: user codes are not offered, and must be said so (absent would mean the same).
    expect(metadata.backchannel_user_code_parameter_supported).toBe(false)
    expect(metadata.grant_types_supported).toContain('urn:openid:params:grant-type:ciba')
    expect(metadata.authorization_details_types_supported).toEqual([
      'payment_initiation',
      'tool_call',
    ])
  })

  it('poll mode with openid-client: pending until the person approves, then a token carrying exactly the approved details', async () => {
    const config = await configure(poller)
    const started = await client.initiateBackchannelAuthentication(config, {
      scope: 'openid stock:trade',
      login_hint: alice.email,
      binding_message: 'Pay ACME 120 EUR',
      resource: RESOURCE,
      authorization_details: JSON.stringify([PAYMENT]),
    })
    expect(started.auth_req_id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(started.interval).toBe(1)
    const id = await newest()
    const approval = await deputy.deps.approvals.byId(id)
    expect(approval).toMatchObject({ status: 'pending', bindingMessage: 'Pay ACME 120 EUR' })
    const polling = client.pollBackchannelAuthenticationGrant(config, started)
    await sleep(1500)
    expect((await decide(id, 'approved')).status).toBe('decided')
    const tokens = await polling
    expect(tokens.authorization_details).toEqual([PAYMENT])
    expect(tokens.refresh_token).toBeUndefined()
    expect(tokens.claims()?.sub).toBe(alice.id)
    const claims = decodeJwt(tokens.access_token)
    expect(claims).toMatchObject({
      sub: alice.id,
      aud: RESOURCE,
      approval_id: id,
      authorization_details: [PAYMENT],
    })
    // Introspection shows the details too (RFC 9396 §9.2).
    const introspected = await fetch(`${issuer}/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${btoa(`${poller.clientId}:${poller.secret}`)}`,
      },
      body: new URLSearchParams({ token: tokens.access_token }),
    })
    expect(await introspected.json()).toMatchObject({
      active: true,
      authorization_details: [PAYMENT],
    })
    // Single use: the same auth_req_id again is invalid_grant.
    const again = await token(started.auth_req_id)
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
  })

  it('a declined request is access_denied, and openid-client stops polling', async () => {
    const config = await configure(poller)
    const started = await client.initiateBackchannelAuthentication(config, {
      scope: 'openid stock:trade',
      login_hint: alice.email,
    })
    const id = await newest()
    await decide(id, 'denied')
    const refused = await client.pollBackchannelAuthenticationGrant(config, started).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(refused).toBeInstanceOf(client.ResponseBodyError)
    expect((refused as client.ResponseBodyError).error).toBe('access_denied')
  })

  it('ping mode: the decision posts {auth_req_id} with the client_notification_token as Bearer, then the token is ready', async () => {
    const started = await ask({ client_notification_token: 'ping-token-123' }, pinged)
    expect(started.status).toBe(200)
    const authReqId = started.body.auth_req_id as string
    expect(await token(authReqId, pinged)).toMatchObject({
      body: { error: 'authorization_pending' },
    })
    await decide(await newest(), 'approved')
    await deputy.deps.notifier.idle()
    expect(pings.at(-1)).toEqual({
      authorization: 'Bearer ping-token-123',
      body: { auth_req_id: authReqId },
    })
    // The pinged client fetches its token with openid-client, as a poll-mode client would.
    const tokens = await client.pollBackchannelAuthenticationGrant(
      await configure(pinged),
      started.body as unknown as client.BackchannelAuthenticationResponse,
    )
    expect(tokens.token_type).toBe('bearer')
    expect(tokens.claims()?.sub).toBe(alice.id)
  })

  it('ping mode: a denial pings too (CIBA §10.2, "a successful or failed" authentication), then the token endpoint says access_denied', async () => {
    const started = await ask({ client_notification_token: 'ping-token-456' }, pinged)
    const authReqId = started.body.auth_req_id as string
    await decide(await newest(), 'denied')
    await deputy.deps.notifier.idle()
    expect(pings.at(-1)).toEqual({
      authorization: 'Bearer ping-token-456',
      body: { auth_req_id: authReqId },
    })
    expect(await token(authReqId, pinged)).toMatchObject({
      status: 400,
      body: { error: 'access_denied' },
    })
  })

  it('ping mode: a failed ping is retried, logged as delivered, and no token is in the log or the audit record', async () => {
    const started = await ask({ client_notification_token: 'ping-token-789' }, pinged)
    const authReqId = started.body.auth_req_id as string
    const id = await newest()
    failPings = 1
    const before = pings.length
    await decide(id, 'approved')
    await deputy.deps.notifier.idle()
    expect(pings.slice(before)).toEqual([
      { authorization: 'Bearer ping-token-789', body: { auth_req_id: authReqId } },
      { authorization: 'Bearer ping-token-789', body: { auth_req_id: authReqId } },
    ])
    const log = await deputy.deps.db
      .selectFrom('approval_notifications')
      .selectAll()
      .where('approval_id', '=', id)
      .execute()
    expect(log).toMatchObject([{ channel: 'ping', status: 'delivered', attempts: 2 }])
    const records = await deputy.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('target', 'like', `%${id}%`)
      .execute()
    expect(records.map((r) => r.type)).toContain('approval.notified')
    for (const text of [JSON.stringify(log), JSON.stringify(records)]) {
      expect(text).not.toContain('ping-token-789')
      expect(text).not.toContain(authReqId)
    }
  })

  it('ping mode needs a client_notification_token (invalid_request)', async () => {
    expect(await ask({}, pinged)).toMatchObject({ status: 400, body: { error: 'invalid_request' } })
  })

  it('slow_down when polled faster than the interval, which then grows by 5 s', async () => {
    const started = await ask()
    const authReqId = started.body.auth_req_id as string
    expect(await token(authReqId)).toMatchObject({ body: { error: 'authorization_pending' } })
    expect(await token(authReqId)).toMatchObject({ status: 400, body: { error: 'slow_down' } })
    const [approval] = await deputy.deps.approvals.listForUser(alice.id, 'pending', 1)
    expect(approval?.intervalSeconds).toBe(6)
    await decide(approval?.id as string, 'denied')
  })

  it('auth_req_id is bound to its client: another CIBA client gets invalid_grant and the owner still can', async () => {
    const started = await ask()
    const authReqId = started.body.auth_req_id as string
    expect(await token(authReqId, pinged)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    })
    await decide(await newest(), 'approved')
    await sleep(1100)
    expect((await token(authReqId)).status).toBe(200)
  })

  it('requested_expiry is capped by backchannelMaxExpirySeconds', async () => {
    const started = await ask({ requested_expiry: '999999999' })
    expect(started.status).toBe(200)
    expect(started.body.expires_in).toBe(deputy.deps.config.backchannelMaxExpirySeconds)
    const request = await deputy.deps.approvals.byId(await newest())
    expect(((request?.expiresAt ?? 0) - (request?.createdAt ?? 0)) / 1000).toBe(
      deputy.deps.config.backchannelMaxExpirySeconds,
    )
    await decide(request?.id as string, 'denied')
  })

  it('an undecided request past its expiry is expired_token (requested_expiry is honoured)', async () => {
    const started = await ask({ requested_expiry: '1' })
    expect(started.body.expires_in).toBe(1)
    await sleep(1200)
    expect(await token(started.body.auth_req_id as string)).toMatchObject({
      status: 400,
      body: { error: 'expired_token' },
    })
  })

  it.each([
    ['no hint', { login_hint: '' }, 'invalid_request'],
    ['two hints', { id_token_hint: 'x.y.z' }, 'invalid_request'],
    ['an unknown person', { login_hint: 'nobody@example.com' }, 'unknown_user_id'],
    [
      'an iss_sub hint for another issuer',
      {
        login_hint: JSON.stringify({ format: 'iss_sub', iss: 'https://other.example/', sub: 'x' }),
      },
      'unknown_user_id',
    ],
    ['no openid scope', { scope: 'stock:trade' }, 'invalid_scope'],
    ['a scope the resource does not offer', { scope: 'openid stock:steal' }, 'invalid_scope'],
    [
      'a binding message with a newline',
      { binding_message: 'pay\nnow' },
      'invalid_binding_message',
    ],
    ['a binding message too long', { binding_message: 'x'.repeat(101) }, 'invalid_binding_message'],
    ['a bad requested_expiry', { requested_expiry: '-5' }, 'invalid_request'],
    ['an unknown resource', { resource: 'https://nowhere.example/' }, 'invalid_target'],
    ['a signed request object', { request: 'x.y.z' }, 'invalid_request'],
    [
      'details that are not an array',
      { authorization_details: '{"type":"tool_call"}' },
      'invalid_authorization_details',
    ],
    [
      'a tool_call detail with a field its type does not know (RFC 9396 §5)',
      {
        authorization_details: JSON.stringify([
          { type: 'tool_call', server: RESOURCE, tool: 'buy', arguments: {}, limit: 'none' },
        ]),
      },
      'invalid_authorization_details',
    ],
    [
      'a tool_call detail without its arguments (RFC 9396 §5)',
      {
        authorization_details: JSON.stringify([
          { type: 'tool_call', server: RESOURCE, tool: 'buy' },
        ]),
      },
      'invalid_authorization_details',
    ],
    [
      "an operator's detail with a field its schema does not name (RFC 9396 §5)",
      {
        authorization_details: JSON.stringify([{ ...PAYMENT, debtorAccount: 'someone-else' }]),
      },
      'invalid_authorization_details',
    ],
    [
      'a detail without a type (RFC 9396 §2)',
      { authorization_details: '[{"tool":"buy"}]' },
      'invalid_authorization_details',
    ],
    [
      'a detail of an unknown type',
      { authorization_details: '[{"type":"wire_transfer"}]' },
      'invalid_authorization_details',
    ],
  ])('refuses %s with %s', async (_case, extra, error) => {
    const params: Record<string, string> = {
      scope: 'openid stock:trade',
      login_hint: alice.email,
      ...extra,
    }
    if (params.login_hint === '') delete params.login_hint
    const refused = await backchannel(params)
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe(error)
  })

  it('names the field of a detail that breaks its type’s schema', async () => {
    const refused = await ask({
      authorization_details: JSON.stringify([
        { ...PAYMENT, instructedAmount: { amount: 120, currency: 'EUR' } },
      ]),
    })
    expect(refused.body).toMatchObject({ error: 'invalid_authorization_details' })
    expect(refused.body.error_description).toMatch(
      /authorization_details\[0\]\.instructedAmount\.amount must be string/,
    )
  })

  it('knows the person by iss_sub, by user id and by an ID token Deputy issued; an expired login_hint_token is refused', async () => {
    const issSub = JSON.stringify({ format: 'iss_sub', iss: issuer, sub: alice.id })
    for (const hint of [{ login_hint: issSub }, { login_hint: alice.id }]) {
      const started = await backchannel({ scope: 'openid', ...hint })
      expect(started.status).toBe(200)
      await decide(await newest(), 'denied')
    }
    const user = await deputy.deps.users.findById(alice.id)
    const idToken = await mintIdToken(
      { ...deputy.deps, clock: { now: () => new Date(Date.now() - 3600_000) } },
      {
        clientId: poller.clientId,
        user: user as NonNullable<typeof user>,
        scopes: ['openid'],
        nonce: null,
        authTime: Date.now(),
      },
    )
    // id_token_hint may have expired (it only names the person)...
    const started = await backchannel({ scope: 'openid', id_token_hint: idToken })
    expect(started.status).toBe(200)
    await decide(await newest(), 'denied')
    // ...a login_hint_token may not.
    expect(await backchannel({ scope: 'openid', login_hint_token: idToken })).toMatchObject({
      body: { error: 'expired_login_hint_token' },
    })
    expect(await backchannel({ scope: 'openid', id_token_hint: 'not.a.token' })).toMatchObject({
      body: { error: 'invalid_request' },
    })
    // CIBA §7.1: an ID token "previously issued to the Client": not one issued to another.
    const othersToken = await mintIdToken(deputy.deps, {
      clientId: pinged.clientId,
      user: user as NonNullable<typeof user>,
      scopes: ['openid'],
      nonce: null,
      authTime: Date.now(),
    })
    for (const hint of ['id_token_hint', 'login_hint_token'])
      expect(await backchannel({ scope: 'openid', [hint]: othersToken })).toMatchObject({
        status: 400,
        body: { error: 'invalid_request' },
      })
  })

  it('refuses a client not registered for CIBA (unauthorized_client) and a client that cannot authenticate (invalid_client)', async () => {
    expect(await ask({}, plain)).toMatchObject({
      status: 400,
      body: { error: 'unauthorized_client' },
    })
    expect(await ask({}, { clientId: poller.clientId, secret: 'wrong' })).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    })
    // At /token too: a client not registered for the grant cannot poll, even with a real id.
    const started = await ask()
    expect(await token(started.body.auth_req_id as string, plain)).toMatchObject({
      status: 400,
      body: { error: 'unauthorized_client' },
    })
    // CIBA §10.1: auth_req_id is required.
    expect(await token('')).toMatchObject({ status: 400, body: { error: 'invalid_request' } })
    await decide(await newest(), 'denied')
  })

  it('caps the undecided requests one client may have open for one person', async () => {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      expect((await ask()).status).toBe(200)
      ids.push(await newest())
    }
    expect(await ask()).toMatchObject({ status: 400, body: { error: 'invalid_request' } })
    for (const id of ids) await decide(id, 'denied')
    expect((await ask()).status).toBe(200)
    await decide(await newest(), 'denied')
  })

  it('a decision counts once: a second decision changes nothing', async () => {
    await ask()
    const id = await newest()
    expect((await decide(id, 'approved')).status).toBe('decided')
    expect((await decide(id, 'denied')).status).toBe('already-decided')
    expect((await deputy.deps.approvals.byId(id))?.status).toBe('approved')
  })

  it('a decision whose audit record could not be written counts for nothing: no token, no access_denied', async () => {
    const failing = {
      ...deputy.deps,
      audit: {
        ...deputy.deps.audit,
        append: () => Promise.reject(new Error('audit store unavailable')),
      },
    }
    for (const decision of ['approved', 'denied'] as const) {
      const started = await ask()
      const id = await newest()
      await expect(
        decideApproval(failing, { id, decision, actor: person, shownDigest: 'sha-256:test' }),
      ).rejects.toThrow(/audit store unavailable/)
      expect((await deputy.deps.approvals.byId(id))?.status).toBe(decision)
      expect(await token(started.body.auth_req_id as string)).toMatchObject({
        status: 400,
        body: { error: 'authorization_pending' },
      })
    }
  })

  it('a dynamically registered CIBA client may ask only people who already allowed it (RFC 7591 registration metadata)', async () => {
    const registered = await fetch(`${issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Self-registered agent',
        redirect_uris: ['https://agent.example/cb'],
        grant_types: ['authorization_code', 'urn:openid:params:grant-type:ciba'],
        backchannel_token_delivery_mode: 'poll',
      }),
    })
    expect(registered.status).toBe(201)
    const body = (await registered.json()) as { client_id: string; client_secret: string }
    expect(body).toMatchObject({ backchannel_token_delivery_mode: 'poll' })
    const stranger = { clientId: body.client_id, secret: body.client_secret }
    expect(await ask({}, stranger)).toMatchObject({
      status: 400,
      body: { error: 'unknown_user_id' },
    })
    await deputy.deps.grants.create({
      userId: alice.id,
      clientId: stranger.clientId,
      resource: RESOURCE,
      scopes: ['openid'],
    })
    expect((await ask({}, stranger)).status).toBe(200)
    await decide(await newest(), 'denied')

    for (const metadata of [
      {
        grant_types: ['authorization_code', 'urn:openid:params:grant-type:ciba'],
        backchannel_token_delivery_mode: 'ping',
      },
      {
        grant_types: ['authorization_code', 'urn:openid:params:grant-type:ciba'],
        token_endpoint_auth_method: 'none',
      },
      { grant_types: ['authorization_code'], backchannel_token_delivery_mode: 'poll' },
      // CIBA §4: the notification endpoint is https.
      {
        grant_types: ['authorization_code', 'urn:openid:params:grant-type:ciba'],
        backchannel_token_delivery_mode: 'ping',
        backchannel_client_notification_endpoint: 'http://agent.example/ciba',
      },
    ]) {
      const refused = await fetch(`${issuer}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: ['https://agent.example/cb'], ...metadata }),
      })
      expect(refused.status, JSON.stringify(metadata)).toBe(400)
      const answer = (await refused.json()) as { error: string; error_description: string }
      expect(answer.error).toBe('invalid_client_metadata')
      if ('backchannel_client_notification_endpoint' in metadata)
        expect(answer.error_description).toMatch(/must be an https URL/)
    }
  })
})
