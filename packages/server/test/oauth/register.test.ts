import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

function manualClock(start = Date.parse('2026-03-01T09:00:00Z')) {
  let now = start
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000
    },
  }
}

describe('Dynamic Client Registration (RFC 7591)', () => {
  let deputy: TestDeputy
  const clock = manualClock()

  beforeAll(async () => {
    // This suite registers far more clients from one (in-process) address than the limit allows.
    deputy = await startTestDeputy({
      clock,
      config: { dynamicRegistrationTtlSeconds: 3600, registrationRateLimit: 1000 },
    })
  })
  afterAll(() => deputy?.dispose())

  function register(body: unknown, headers: Record<string, string> = {}) {
    return deputy.app.request('/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
  }

  async function expectError(res: Response, error: string, description?: RegExp) {
    expect(res.status).toBe(400)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = (await res.json()) as { error: string; error_description: string }
    expect(body.error).toBe(error)
    if (description) expect(body.error_description).toMatch(description)
  }

  it('§3.2.1: registers a public client and answers 201 with its id and metadata, no secret', async () => {
    const res = await register({
      client_name: 'Claude',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'native',
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({
      client_name: 'Claude',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      application_type: 'native',
      client_id_issued_at: Math.floor(clock.now().getTime() / 1000),
    })
    expect(body).not.toHaveProperty('client_secret')
    const client = await deputy.deps.clients.resolve(body.client_id as string)
    expect(client).toMatchObject({ kind: 'dynamic', name: 'Claude' })
  })

  it('§2: defaults to client_secret_basic and returns the secret once, with its expiry', async () => {
    const res = await register({
      client_name: 'Web agent',
      redirect_uris: ['https://agent.example/cb'],
    })
    expect(res.status).toBe(201)
    const body = (await res.json()) as Record<string, unknown>
    expect(body.token_endpoint_auth_method).toBe('client_secret_basic')
    expect(typeof body.client_secret).toBe('string')
    expect(body.application_type).toBe('web')
    // dynamicRegistrationTtlSeconds is set: the secret lapses with the registration.
    expect(body.client_secret_expires_at).toBe(Math.floor(clock.now().getTime() / 1000) + 3600)
    const id = body.client_id as string
    expect(await deputy.deps.clients.verifySecret(id, body.client_secret as string)).toBe(true)
    expect(await deputy.deps.clients.verifySecret(id, 'wrong')).toBe(false)
  })

  it('a registration with an expiry stops resolving once it has lapsed', async () => {
    const res = await register({
      redirect_uris: ['https://agent.example/cb'],
      token_endpoint_auth_method: 'none',
    })
    const { client_id } = (await res.json()) as { client_id: string }
    expect(await deputy.deps.clients.resolve(client_id)).toBeDefined()
    clock.advance(3601)
    expect(await deputy.deps.clients.resolve(client_id)).toBeUndefined()
  })

  it('RFC 9700 §4.15: a client cannot choose its client_id or secret', async () => {
    const res = await register({
      client_id: 'client_admin',
      client_secret: 'mine',
      redirect_uris: ['https://agent.example/cb'],
    })
    expect(res.status).toBe(201)
    const body = (await res.json()) as Record<string, string>
    expect(body.client_id).not.toBe('client_admin')
    expect(body.client_id).toMatch(/^dyn_/)
    expect(body.client_secret).not.toBe('mine')
  })

  it('writes client.registered with the kind, and a refusal with its reason', async () => {
    const res = await register({ client_name: 'Audited', redirect_uris: ['https://a.example/cb'] })
    const { client_id } = (await res.json()) as { client_id: string }
    const [registered] = await tailAudit(deputy.deps.store, { limit: 1, type: 'client.registered' })
    expect(registered?.target).toEqual({ type: 'client', id: client_id })
    expect(registered?.data).toMatchObject({ kind: 'dynamic', name: 'Audited' })
    expect(JSON.stringify(registered)).not.toMatch(/client_secret"?:/)

    await register({ redirect_uris: ['javascript:alert(1)'] })
    const [refused] = await tailAudit(deputy.deps.store, {
      limit: 1,
      type: 'client.registration-refused',
    })
    expect(refused?.reason).toMatch(/^invalid_redirect_uri: .*forbidden scheme javascript:/)
  })

  describe('§3.2.2 invalid_redirect_uri (perf-security §7 test 4)', () => {
    it.each([
      ['javascript:', 'javascript:alert(document.cookie)'],
      ['data:', 'data:text/html,<script>alert(1)</script>'],
      ['file:', 'file:///etc/passwd'],
      ['vbscript:', 'vbscript:msgbox(1)'],
      ['http on a public host', 'http://agent.example/cb'],
      ['a fragment', 'https://agent.example/cb#frag'],
      ['a wildcard', 'https://*.agent.example/cb'],
      ['user information', 'https://agent.example@evil.example/cb'],
      ['a relative URI', '/cb'],
      ['a vbscript: URI', 'vbscript:msgbox(1)'],
      ['a newline', 'https://agent.example/cb\n'],
      ['dot segments', 'https://agent.example/a/../cb'],
    ])('refuses %s', async (_case, uri) => {
      await expectError(await register({ redirect_uris: [uri] }), 'invalid_redirect_uri')
    })

    it('refuses a registration without redirect URIs', async () => {
      await expectError(
        await register({ client_name: 'x' }),
        'invalid_redirect_uri',
        /redirect_uris is required/,
      )
    })
  })

  describe('§3.2.2 invalid_client_metadata', () => {
    it.each([
      [
        'an unknown auth method',
        { token_endpoint_auth_method: 'tls_client_auth' },
        /token_endpoint_auth_method/,
      ],
      [
        'private_key_jwt',
        { token_endpoint_auth_method: 'private_key_jwt' },
        /token_endpoint_auth_method/,
      ],
      ['the implicit grant', { grant_types: ['implicit'] }, /grant_types/],
      ['the password grant', { grant_types: ['password'] }, /grant_types/],
      ['client_credentials', { grant_types: ['client_credentials'] }, /grant_types/],
      [
        'refresh_token without authorization_code',
        { grant_types: ['refresh_token'] },
        /authorization_code/,
      ],
      ['response_type token', { response_types: ['token'] }, /response_types/],
      [
        'redirect_uris that is not a list',
        { redirect_uris: 'https://agent.example/cb' },
        /redirect_uris/,
      ],
      ['an empty client_name', { client_name: '  ' }, /client_name/],
      ['a logo_uri over http', { logo_uri: 'http://agent.example/logo.png' }, /logo_uri/],
      ['an unknown application_type', { application_type: 'tv' }, /application_type/],
      [
        'more than 20 redirect URIs',
        { redirect_uris: Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`) },
        /redirect_uris/,
      ],
    ])('refuses %s', async (_case, fields, description) => {
      await expectError(
        await register({ redirect_uris: ['https://agent.example/cb'], ...fields }),
        'invalid_client_metadata',
        description,
      )
    })
  })

  describe('malformed and oversized bodies get a fast 4xx, never a 5xx (perf-security §7 test 44)', () => {
    it.each([
      ['not JSON', '{"redirect_uris": ['],
      ['a JSON array', '[]'],
      ['JSON null', 'null'],
      ['a JSON string', '"hello"'],
      ['deeply nested JSON', `{"redirect_uris":${'['.repeat(20_000)}${']'.repeat(20_000)}}`],
    ])('refuses %s with invalid_client_metadata', async (_case, body) => {
      await expectError(await register(body), 'invalid_client_metadata')
    })

    it('refuses a form-encoded body', async () => {
      await expectError(
        await register('redirect_uris=https://a.example/cb', {
          'content-type': 'application/x-www-form-urlencoded',
        }),
        'invalid_client_metadata',
        /application\/json/,
      )
    })

    it('refuses a body over 64 KiB with 413', async () => {
      const res = await register({
        redirect_uris: ['https://agent.example/cb'],
        client_name: 'x'.repeat(70 * 1024),
      })
      expect(res.status).toBe(413)
    })

    it('refuses thousands of redirect URIs and very long ones without a 5xx', async () => {
      const many = await register({
        redirect_uris: Array.from({ length: 300 }, (_, i) => `https://a.example/${i}`),
      })
      expect(many.status).toBe(400)
      const long = await register({ redirect_uris: [`https://a.example/${'a'.repeat(5000)}`] })
      expect(long.status).toBe(400)
    })
  })

  it('answers a CORS preflight (browser-based MCP clients register from a page)', async () => {
    const res = await deputy.app.request('/register', {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST' },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
  })
})

describe('Dynamic Client Registration switched off', () => {
  let deputy: TestDeputy
  beforeAll(async () => {
    deputy = await startTestDeputy({ config: { dynamicRegistration: false } })
  })
  afterAll(() => deputy?.dispose())

  it('answers 404 and registers nothing', async () => {
    const res = await deputy.app.request('/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://agent.example/cb'] }),
    })
    expect(res.status).toBe(404)
    expect(await deputy.deps.clients.list()).toEqual([])
  })
})
