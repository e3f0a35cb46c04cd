import { decodeJwt } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import {
  auditOf,
  basic,
  createWorld,
  errorOf,
  expectOAuthJson,
  introspect,
  issueCode,
  OTHER_RESOURCE,
  postForm,
  REDIRECT,
  RESOURCE,
  redeem,
  refresh,
  VERIFIER,
  verifyWithJwks,
  type World,
} from './token-helpers.js'

describe('token endpoint: authorization_code (RFC 6749 §4.1.3, RFC 7636, RFC 9068)', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld()
  })
  afterEach(() => world.deputy.dispose())

  it('issues an RFC 9068 access token for the resource with the person’s claims, a refresh token and an ID token', async () => {
    const { code, grantId } = await issueCode(world)
    const response = await redeem(world, code)
    expect(response.status).toBe(200)
    expectOAuthJson(response)
    const body = (await response.json()) as Record<string, unknown>
    expect(body.token_type).toBe('Bearer')
    expect(body.expires_in).toBe(world.deputy.config.accessTokenTtlSeconds)
    expect(body.scope).toBe('email openid profile tools:read tools:write')
    expect(typeof body.refresh_token).toBe('string')
    expect((body.refresh_token as string).length).toBeGreaterThanOrEqual(43)

    const { payload, header } = await verifyWithJwks(world, body.access_token as string, 'at+jwt')
    expect(header.kid).toBeTruthy()
    expect(payload).toMatchObject({
      iss: world.deputy.config.issuer,
      sub: world.alice.id,
      aud: RESOURCE,
      client_id: world.app.clientId,
      scope: 'email openid profile tools:read tools:write',
      grant_id: grantId,
      name: 'Alice Example',
      email: 'alice@example.com',
      roles: ['shopper'],
      permissions: ['orders:create'],
      favorite_song: 'Bohemian Rhapsody',
    })
    expect(payload.exp).toBe((payload.iat as number) + world.deputy.config.accessTokenTtlSeconds)
    expect(typeof payload.jti).toBe('string')

    const id = await verifyWithJwks(world, body.id_token as string, 'JWT')
    expect(id.payload).toMatchObject({
      sub: world.alice.id,
      aud: world.app.clientId,
      nonce: 'n-0S6_WzA2Mj',
      name: 'Alice Example',
      email: 'alice@example.com',
    })
    expect(id.payload.auth_time).toBe(Math.floor((world.clock.now().getTime() - 5000) / 1000))
  })

  it('omits the ID token without openid, and the refresh token for a client without refresh_token', async () => {
    const { client } = await world.deputy.deps.clients.register(
      {
        name: 'No refresh',
        public: true,
        redirectUris: [REDIRECT],
        grantTypes: ['authorization_code'],
      },
      { type: 'system', id: 'test' },
    )
    const { code } = await issueCode(world, { client, scopes: ['tools:read'] })
    const body = (await (await redeem(world, code, {}, client)).json()) as Record<string, unknown>
    expect(body.access_token).toBeTruthy()
    expect(body.id_token).toBeUndefined()
    expect(body.refresh_token).toBeUndefined()
  })

  it('records token.issued with the jti but never the token itself', async () => {
    const { code } = await issueCode(world)
    const body = (await (await redeem(world, code)).json()) as Record<string, string>
    const [event] = await auditOf(world, 'token.issued')
    expect(event?.data).toMatchObject({
      grantType: 'authorization_code',
      clientId: world.app.clientId,
      userId: world.alice.id,
      resource: RESOURCE,
      jti: decodeJwt(body.access_token as string).jti,
    })
    const all = JSON.stringify(
      await world.deputy.deps.db.selectFrom('audit_events').selectAll().execute(),
    )
    expect(all).not.toContain(body.access_token)
    expect(all).not.toContain(body.refresh_token)
    expect(all).not.toContain(code)
  })

  describe('PKCE (RFC 7636 §4.6)', () => {
    it('refuses a wrong code_verifier with invalid_grant', async () => {
      const { code } = await issueCode(world)
      const response = await redeem(world, code, { code_verifier: 'x'.repeat(43) })
      expect(response.status).toBe(400)
      expect(await errorOf(response)).toBe('invalid_grant')
    })

    it('refuses a missing code_verifier, and the code still works for its owner', async () => {
      const { code } = await issueCode(world)
      const missing = await postForm(world, '/token', {
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        client_id: world.app.clientId,
      })
      expect(await errorOf(missing)).toBe('invalid_grant')
      expect((await redeem(world, code)).status).toBe(200)
    })

    it.each([
      ['42 characters', 'a'.repeat(42)],
      ['129 characters', 'a'.repeat(129)],
      ['a character outside unreserved', `${'a'.repeat(42)}!`],
      ['a space', `${'a'.repeat(21)} ${'a'.repeat(21)}`],
    ])('refuses an ABNF-invalid code_verifier (%s) with invalid_grant', async (_, verifier) => {
      const { code } = await issueCode(world, { verifier })
      const response = await redeem(world, code, { code_verifier: verifier })
      expect(response.status).toBe(400)
      expect(await errorOf(response)).toBe('invalid_grant')
    })
  })

  describe('single use (RFC 6749 §4.1.2, RFC 9700 §4.5)', () => {
    it('refuses a replayed code and revokes what the first redemption issued', async () => {
      const { code, grantId } = await issueCode(world)
      const first = (await (await redeem(world, code)).json()) as Record<string, string>
      expect((await introspect(world, first.access_token as string)).active).toBe(true)

      const second = await redeem(world, code)
      expect(second.status).toBe(400)
      expect(await errorOf(second)).toBe('invalid_grant')

      expect(await world.deputy.deps.grants.isActive(grantId)).toBe(false)
      const refreshed = await refresh(world, first.refresh_token as string)
      expect(await errorOf(refreshed)).toBe('invalid_grant')
      expect(await introspect(world, first.access_token as string)).toEqual({ active: false })
      const [revoked] = await auditOf(world, 'grant.revoked')
      expect(revoked?.reason).toBe('code-replay')
      const refused = await auditOf(world, 'token.refused')
      expect(refused.map((r) => r.reason)).toContain('code-replayed')
    })

    it('refuses an expired code', async () => {
      const { code } = await issueCode(world)
      world.clock.advance(61)
      expect(await errorOf(await redeem(world, code))).toBe('invalid_grant')
    })

    it('refuses an unknown, truncated or extended code', async () => {
      const { code } = await issueCode(world)
      for (const wrong of ['nope', code.slice(0, -1), `${code}A`]) {
        expect(await errorOf(await redeem(world, wrong))).toBe('invalid_grant')
      }
    })
  })

  it('refuses a code redeemed by another client (and the code is spent)', async () => {
    const { code } = await issueCode(world)
    const response = await redeem(world, code, {}, world.otherApp)
    expect(await errorOf(response)).toBe('invalid_grant')
    expect(await errorOf(await redeem(world, code))).toBe('invalid_grant')
  })

  it('refuses a redirect_uri other than the one the code was issued for', async () => {
    const { code } = await issueCode(world)
    const response = await redeem(world, code, { redirect_uri: 'http://127.0.0.1:3000/callback/' })
    expect(await errorOf(response)).toBe('invalid_grant')
  })

  it('refuses a resource other than the code’s with invalid_target, and accepts the same one', async () => {
    const wrong = await issueCode(world)
    const response = await redeem(world, wrong.code, { resource: OTHER_RESOURCE })
    expect(response.status).toBe(400)
    expect(await errorOf(response)).toBe('invalid_target')
    const right = await issueCode(world)
    expect((await redeem(world, right.code, { resource: RESOURCE })).status).toBe(200)
  })
})

describe('token endpoint: request parsing and client checks (RFC 6749 §3.1, §3.2, §5.2)', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld()
  })
  afterEach(() => world.deputy.dispose())

  it('refuses a JSON body with invalid_request', async () => {
    const { code } = await issueCode(world)
    const response = await world.deputy.app.request('/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: VERIFIER,
        client_id: world.app.clientId,
      }),
    })
    expect(response.status).toBe(400)
    expect(await errorOf(response)).toBe('invalid_request')
  })

  it('refuses a body without a content type', async () => {
    const response = await world.deputy.app.request('/token', {
      method: 'POST',
      body: 'grant_type=client_credentials',
    })
    expect(response.status).toBe(400)
    expect(await errorOf(response)).toBe('invalid_request')
  })

  it.each(['grant_type', 'code', 'client_id', 'redirect_uri', 'code_verifier'])(
    'refuses a repeated %s parameter with invalid_request and leaves the code unspent',
    async (name) => {
      const { code } = await issueCode(world)
      const params = new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: VERIFIER,
        client_id: world.app.clientId,
      })
      params.append(name, params.get(name) as string)
      const response = await postForm(world, '/token', params.toString())
      expect(response.status).toBe(400)
      expect(await errorOf(response)).toBe('invalid_request')
      expect((await redeem(world, code)).status).toBe(200)
    },
  )

  it('refuses an oversized body with a 4xx, never a 5xx', async () => {
    const response = await postForm(
      world,
      '/token',
      `grant_type=client_credentials&x=${'a'.repeat(100_000)}`,
    )
    expect(response.status).toBe(413)
    expect(response.headers.get('content-type')).toContain('application/json')
  })

  it.each([
    ['percent garbage', 'grant_type=%zz%&code=%%%'],
    ['binary', '\u0000\u0001\uffff=\ud800'],
    ['no equals signs', 'grant_type'],
    ['empty', ''],
  ])('answers a malformed body (%s) with a 4xx OAuth error', async (_, body) => {
    const response = await postForm(world, '/token', body)
    expect(response.status).toBeGreaterThanOrEqual(400)
    expect(response.status).toBeLessThan(500)
    expect(['invalid_request', 'unsupported_grant_type']).toContain(await errorOf(response))
  })

  it('refuses an unknown grant type with unsupported_grant_type', async () => {
    const response = await postForm(world, '/token', {
      grant_type: 'password',
      username: 'alice@example.com',
      password: 'x',
      client_id: world.app.clientId,
    })
    expect(await errorOf(response)).toBe('unsupported_grant_type')
  })

  it('refuses a grant type the client is not registered for with unauthorized_client', async () => {
    const response = await postForm(
      world,
      '/token',
      {
        grant_type: 'authorization_code',
        code: 'x',
        redirect_uri: REDIRECT,
        code_verifier: VERIFIER,
      },
      basic(world.agent.client.clientId, world.agent.secret),
    )
    expect(response.status).toBe(400)
    expect(await errorOf(response)).toBe('unauthorized_client')
    const [refused] = await auditOf(world, 'token.refused')
    expect(refused?.actor).toContain(world.agent.client.clientId)
    expect(refused?.reason).toContain('grant-type-not-allowed')
  })
})

// Issue 3 §9: two concurrent redemptions of one code, on each database: exactly one wins.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`code redemption race (${dialect.name})`, () => {
    let database: TestDatabase
    let world: World
    beforeEach(async () => {
      database = await dialect.create()
      world = await createWorld({ database })
    })
    afterEach(() => world.deputy.dispose())

    it('lets exactly one of two concurrent redemptions win', async () => {
      for (let round = 0; round < 5; round++) {
        const { code, grantId } = await issueCode(world)
        const responses = await Promise.all([redeem(world, code), redeem(world, code)])
        const statuses = responses.map((r) => r.status).sort()
        expect(statuses).toEqual([200, 400])
        const loser = responses.find((r) => r.status === 400) as Response
        expect(await errorOf(loser)).toBe('invalid_grant')
        // A loser that raced the winner's issuance only lost (issue 9 §11); one that came after
        // it is a replay and revoked what the winner got. The winner's tokens agree with the grant.
        const winner = (await responses.find((r) => r.status === 200)?.json()) as Record<
          string,
          string
        >
        const active = await world.deputy.deps.grants.isActive(grantId)
        expect((await refresh(world, winner.refresh_token as string)).status).toBe(
          active ? 200 : 400,
        )
        if (!active)
          expect(await introspect(world, winner.access_token as string)).toEqual({ active: false })
      }
    })

    it('a redemption held before its commit loses to one that commits first, and as a replay of an issued code revokes', async () => {
      // The code is redeemed in the one commit that stores its tokens and audit record, so there
      // is no "consumed but not yet issued" window: whichever redemption commits first wins, and
      // a later one can only be a replay after the winner issued (RFC 6749 §4.1.2).
      const grants = world.deputy.deps.grants
      const isActive = grants.isActive
      let release: () => void = () => {}
      let checking: () => void = () => {}
      const reached = new Promise<void>((resolve) => {
        checking = resolve
      })
      // Hold the first redemption after it read the code, before its commit.
      grants.isActive = async (...args) => {
        grants.isActive = isActive
        checking()
        await new Promise<void>((resolve) => {
          release = resolve
        })
        return isActive(...args)
      }
      const { code, grantId } = await issueCode(world)
      const held = redeem(world, code)
      await reached
      const first = await redeem(world, code)
      expect(first.status).toBe(200)
      const tokens = (await first.json()) as Record<string, string>
      expect(await world.deputy.deps.grants.isActive(grantId)).toBe(true)
      release()
      expect(await errorOf(await held)).toBe('invalid_grant')
      const [replay] = (await auditOf(world, 'token.refused')).filter(
        (e) => e.data.grantType === 'authorization_code',
      )
      expect(replay?.reason).toBe('code-replayed')
      expect(await world.deputy.deps.grants.isActive(grantId)).toBe(false)
      expect((await refresh(world, tokens.refresh_token as string)).status).toBe(400)
      expect(await introspect(world, tokens.access_token as string)).toEqual({ active: false })
      // Exactly one token.issued for the code: the loser wrote nothing.
      const issued = (await auditOf(world, 'token.issued')).filter(
        (e) => e.data.grantType === 'authorization_code',
      )
      expect(issued).toHaveLength(1)
    })

    it('a code spent by a refused redemption is never redeemed: presenting it again only loses', async () => {
      const { code, grantId } = await issueCode(world)
      expect(await errorOf(await redeem(world, code, {}, world.otherApp))).toBe('invalid_grant')
      expect(await errorOf(await redeem(world, code))).toBe('invalid_grant')
      const reasons = (await auditOf(world, 'token.refused')).map((e) => e.reason)
      expect(reasons).toContain('code-of-another-client')
      expect(reasons).toContain('code-redemption-in-progress')
      expect(await world.deputy.deps.grants.isActive(grantId)).toBe(true)
    })
  })
}
