import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { documentServer } from '../helpers/loopback.js'
import { browser } from '../helpers/sign-in.js'
import {
  ADMIN,
  basic,
  createWorld,
  REDIRECT,
  RESOURCE,
  type World,
} from '../oauth/token-helpers.js'

// One hostile request must not fail other people's requests: a NUL byte reaches PostgreSQL as
// `invalid byte sequence for encoding "UTF8": 0x00`, and deep JSON overflows the stack. Both are
// refused at the boundary with the protocol's error, and the audit chain cannot be poisoned.

const NUL = '\u0000'

function nested(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`hostile input on ${dialect.name}`, () => {
    let world: World
    let adminKey: string

    beforeEach(async () => {
      world = await createWorld({
        database: await dialect.create(),
        config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
      })
      adminKey = (await createAdminApiKeys(world.deputy.deps).create('ci', ADMIN)).key
    })
    afterEach(() => world.deputy.dispose())

    const request = async (path: string, init: RequestInit = {}): Promise<Response> =>
      world.deputy.app.request(`http://localhost:8080${path}`, init)
    const form = (path: string, body: string, headers: Record<string, string> = {}) =>
      request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
      })
    const admin = (method: string, path: string, body?: string) =>
      request(`/admin/api${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
      })
    const validToken = () =>
      form(
        '/token',
        new URLSearchParams({
          grant_type: 'client_credentials',
          resource: RESOURCE,
          scope: 'tools:read',
        }).toString(),
        basic(world.agent.client.clientId, world.agent.secret),
      )
    const basicNul = () => `Basic ${Buffer.from(`${NUL}:${NUL}`).toString('base64')}`
    const authorizeQuery = (params: Record<string, string>) =>
      `/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: world.app.clientId,
        redirect_uri: REDIRECT,
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
        ...params,
      })}`

    async function oauthError(response: Response, status: number, error: string) {
      expect(response.status).toBe(status)
      expect(((await response.json()) as { error: string }).error).toBe(error)
    }

    async function chainIntact() {
      const verified = await verifyAuditChain(world.deputy.deps.store)
      expect(verified.firstBad).toBeUndefined()
      expect(verified.ok).toBe(true)
    }

    it('a NUL in a /token form value is invalid_request, even without client authentication', async () => {
      await oauthError(await form('/token', 'grant_type=%00'), 400, 'invalid_request')
      await oauthError(
        await form('/token', 'grant_type=authorization_code&client_id=%00&code=x'),
        400,
        'invalid_request',
      )
      await oauthError(
        await form('/token', 'grant_type=client_credentials&%00=x'),
        400,
        'invalid_request',
      )
      await oauthError(await form('/revoke', 'token=%00&client_id=x'), 400, 'invalid_request')
      await oauthError(await form('/introspect', 'token=%00'), 400, 'invalid_request')
      await chainIntact()
    })

    it('Basic credentials holding a NUL are invalid_client', async () => {
      for (const authorization of [
        basicNul(),
        `Basic ${Buffer.from('%00:%00').toString('base64')}`,
      ]) {
        await oauthError(
          await form('/token', 'grant_type=client_credentials', { authorization }),
          401,
          'invalid_client',
        )
      }
      await chainIntact()
    })

    it('a NUL in client_id or redirect_uri at /authorize stops on a page, never a redirect', async () => {
      for (const path of [
        authorizeQuery({ client_id: `x${NUL}` }),
        authorizeQuery({ redirect_uri: `${REDIRECT}${NUL}` }),
        `/authorize?client_id=%00&response_type=code`,
      ]) {
        const response = await request(path)
        expect(response.status).toBe(400)
        expect(response.headers.get('location')).toBeNull()
        expect(response.headers.get('content-type')).toMatch(/^text\/html/)
        expect(await response.text()).toContain('Request stopped')
      }
      await chainIntact()
    })

    it('a NUL in another /authorize parameter goes back to a trusted client as invalid_request', async () => {
      for (const params of [
        { resource: `https://x${NUL}` },
        { scope: `tools:read${NUL}` },
        { state: NUL },
      ] as Record<string, string>[]) {
        const response = await request(authorizeQuery(params))
        expect(response.status).toBe(303)
        const location = new URL(response.headers.get('location') ?? '')
        expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
        expect(location.searchParams.get('error')).toBe('invalid_request')
      }
      await chainIntact()
    })

    it('a NUL in the sign-in form answers the sign-in page with a clear message', async () => {
      const b = browser(world.deputy)
      const csrf = await b.openLogin()
      for (const fields of [
        { email: `alice@example.com${NUL}`, password: 'whatever it is' },
        { email: 'alice@example.com', password: `pass${NUL}word` },
      ]) {
        const response = await b.post('/login', { csrf_token: csrf, ...fields })
        expect(response.status).toBe(400)
        const page = await response.text()
        expect(page).toContain('name="password"')
        expect(page).toContain('The form held a character Deputy does not accept (a NUL byte).')
      }
      await chainIntact()
    })

    it('a NUL in an admin API path segment, query or JSON body is a 400 naming the problem', async () => {
      const user = await world.deputy.deps.users.findByEmail('alice@example.com')
      for (const [method, path, body] of [
        ['GET', '/users/%00'],
        ['GET', `/users/${user?.id}%00`],
        ['PUT', `/users/${user?.id}/claims`, JSON.stringify({ claims: { note: NUL } })],
        ['POST', '/users', JSON.stringify({ email: 'eve@example.com', name: `Eve${NUL}` })],
        ['POST', '/clients', JSON.stringify({ name: `Agent${NUL}` })],
        ['POST', '/roles', JSON.stringify({ [`name${NUL}`]: 'x' })],
        ['GET', '/policies?resource=%00'],
      ] as const) {
        const response = await admin(method, path, body)
        expect(response.status, `${method} ${path}`).toBe(400)
        const answer = (await response.json()) as { message: string }
        expect(answer.message).toMatch(/NUL/)
      }
      await chainIntact()
    })

    it('a NUL in a registration request is invalid_client_metadata and registers nothing', async () => {
      const response = await request('/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: `Agent${NUL}`, redirect_uris: [REDIRECT] }),
      })
      await oauthError(response, 400, 'invalid_client_metadata')
      const rows = await world.deputy.deps.db
        .selectFrom('clients')
        .select('client_id')
        .where('kind', '=', 'dynamic')
        .execute()
      expect(rows).toHaveLength(0)
      await chainIntact()
    })

    it('a claims value nested 5,000 levels deep is refused with a 400, as is any JSON input nested deeper than 32', async () => {
      const user = await world.deputy.deps.users.findByEmail('alice@example.com')
      const deep = `{"claims":{"x":${nested(5000)}}}`
      expect(deep.length).toBeLessThan(64 * 1024)
      const claims = await admin('PUT', `/users/${user?.id}/claims`, deep)
      expect(claims.status).toBe(400)
      expect(((await claims.json()) as { message: string }).message).toBe(
        'the request body is nested deeper than 32 levels',
      )
      // Just under the bound is accepted.
      const fine = await admin('PUT', `/users/${user?.id}/claims`, `{"claims":{"x":${nested(30)}}}`)
      expect(fine.status).toBe(200)
      const created = await admin(
        'POST',
        '/users',
        `{"email":"deep@example.com","name":"Deep","claims":{"x":${nested(40)}}}`,
      )
      expect(created.status).toBe(400)
      // In code, below the HTTP layer, the claims schema holds the same bound.
      await expect(
        world.deputy.deps.users.setClaims(
          'alice@example.com',
          { x: JSON.parse(nested(5000)) },
          ADMIN,
        ),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
      const register = await request('/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"client_name":"Deep","redirect_uris":["${REDIRECT}"],"extra":${nested(5000)}}`,
      })
      await oauthError(register, 400, 'invalid_client_metadata')
      await chainIntact()
    })

    it('a client metadata document nested 5,000 levels deep or holding a NUL is refused, never a 500', async () => {
      const documents = new Map<string, string>()
      const docs = await documentServer((path) => ({
        status: 200,
        body: documents.get(path) ?? '{}',
      }))
      try {
        const serve = (path: string, extra: string, name = 'Agent') => {
          const clientId = `${docs.origin}${path}`
          documents.set(
            path,
            `{"client_id":"${clientId}","client_name":${JSON.stringify(name)},"redirect_uris":["${REDIRECT}"]${extra}}`,
          )
          return clientId
        }
        const deep = serve('/deep/client.json', `,"extra":${nested(5000)}`)
        const nul = serve('/nul/client.json', '', `Agent${NUL}`)
        for (const clientId of [deep, nul]) {
          const response = await request(authorizeQuery({ client_id: clientId }))
          expect(response.status).toBe(400)
          expect(await response.text()).toContain('This app is not known to Deputy')
        }
        const refusals = await world.deputy.deps.db
          .selectFrom('audit_events')
          .select('reason')
          .where('type', '=', 'client-metadata.refused')
          .orderBy('seq')
          .execute()
        expect(refusals.map((r) => r.reason)).toEqual([
          'document is nested deeper than 32 levels',
          'document contains a NUL character (\\u0000)',
        ])
        const stored = await world.deputy.deps.db
          .selectFrom('clients')
          .select('client_id')
          .where('kind', '=', 'metadata_document')
          .execute()
        expect(stored).toEqual([])
      } finally {
        await docs.close()
      }
      await chainIntact()
    })

    it('under concurrent load every valid token request succeeds while NUL-laden unauthenticated ones get a 4xx', async () => {
      const hostile = [
        () => form('/token', 'grant_type=%00'),
        () => form('/token', 'grant_type=client_credentials&client_id=%00'),
        () => form('/token', 'grant_type=client_credentials', { authorization: basicNul() }),
        () => request(`/authorize?client_id=%00&resource=%00`),
        () => request(authorizeQuery({ resource: NUL })),
        () => form('/revoke', 'token=%00&client_id=%00'),
      ]
      const valid: Promise<Response>[] = []
      const bad: Promise<Response>[] = []
      for (let round = 0; round < 25; round++) {
        for (let i = 0; i < 8; i++) valid.push(validToken())
        for (const send of hostile) bad.push(send())
      }
      const [goods, bads] = await Promise.all([Promise.all(valid), Promise.all(bad)])
      expect(goods.map((r) => r.status).filter((s) => s !== 200)).toEqual([])
      for (const r of bads) {
        expect(r.status).toBeGreaterThanOrEqual(300)
        expect(r.status).toBeLessThan(500)
      }
      const issued = await world.deputy.deps.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('type', '=', 'token.issued')
        .executeTakeFirstOrThrow()
      expect(Number(issued.n)).toBe(valid.length)
      await chainIntact()
    })

    it('an audit record holding a NUL or a lone surrogate cannot fail the records committed with it, and the chain verifies', async () => {
      const { audit } = world.deputy.deps
      const actor = { type: 'system', id: 'test' } as const
      const appends = Array.from({ length: 40 }, (_, i) =>
        i % 8 === 3
          ? audit.append({
              type: `hostile.written${NUL}`,
              actor: { type: 'client', id: `evil${NUL}` },
              reason: `grant_type ${NUL}\ud800`,
              requestId: `req${NUL}`,
              decision: `deny${NUL}`,
              data: { value: `x${NUL}y`, [`key${NUL}`]: '\udfff' },
            })
          : audit.append({ type: 'test.written', actor, data: { i } }),
      )
      const records = await Promise.all(appends)
      expect(records).toHaveLength(40)
      const hostile = records[3]
      expect(hostile?.reason).toBe('grant_type \ufffd\ufffd')
      expect(hostile?.type).toBe('hostile.written\ufffd')
      // The JSON columns hold both as escapes, so what was given is kept exactly.
      expect(hostile?.actor).toEqual({ type: 'client', id: `evil${NUL}` })
      expect(hostile?.data).toEqual({ value: `x${NUL}y`, [`key${NUL}`]: '\udfff' })
      const stored = await world.deputy.deps.db
        .selectFrom('audit_events')
        .select(['reason', 'request_id'])
        .where('seq', '=', hostile?.seq ?? 0)
        .executeTakeFirstOrThrow()
      expect(stored).toEqual({ reason: 'grant_type \ufffd\ufffd', request_id: 'req\ufffd' })
      await chainIntact()
    })

    it('when the database refuses one record of a group commit, only that record fails', async () => {
      const { db, store, audit } = world.deputy.deps
      if (store.dialect === 'postgres') {
        await sql`CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
          BEGIN IF NEW.reason = 'poison' THEN RAISE EXCEPTION 'poisoned record'; END IF; RETURN NEW; END
          $$ LANGUAGE plpgsql`.execute(db)
        await sql`CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_poison()`.execute(
          db,
        )
      } else {
        await sql`CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_events WHEN NEW.reason = 'poison'
          BEGIN SELECT RAISE(ABORT, 'poisoned record'); END`.execute(db)
      }
      const actor = { type: 'system', id: 'test' } as const
      const outcomes = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          audit.append({
            type: 'test.written',
            actor,
            reason: i === 17 ? 'poison' : null,
            data: { i },
          }),
        ),
      )
      expect(outcomes.map((o) => o.status)).toEqual(
        Array.from({ length: 30 }, (_, i) => (i === 17 ? 'rejected' : 'fulfilled')),
      )
      const written = await db
        .selectFrom('audit_events')
        .select('data')
        .where('type', '=', 'test.written')
        .orderBy('seq')
        .execute()
      expect(written.map((r) => JSON.parse(r.data).i)).toEqual(
        Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 17),
      )
      await chainIntact()
    })
  })
}
