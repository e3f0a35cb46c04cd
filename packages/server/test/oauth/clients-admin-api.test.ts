import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { tailAudit } from '../../src/audit/query.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system', id: 'test' } as const

describe('admin API for resources and clients (§0, §5)', () => {
  let deputy: TestDeputy
  let key: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    key = (await createAdminApiKeys(deputy.deps).create('ci', SYSTEM)).key
  })
  afterAll(() => deputy?.dispose())

  function call(method: string, path: string, body?: unknown, auth = `Bearer ${key}`) {
    return deputy.app.request(`/admin/api${path}`, {
      method,
      headers: {
        authorization: auth,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  }

  it('refuses every route without a valid admin API key', async () => {
    for (const [method, path] of [
      ['GET', '/resources'],
      ['POST', '/resources'],
      ['DELETE', '/resources/x'],
      ['GET', '/clients'],
      ['POST', '/clients'],
      ['POST', '/clients/x/disable'],
      ['DELETE', '/clients/x'],
      ['GET', '/client-metadata-hosts'],
      ['PUT', '/client-metadata-hosts'],
      ['DELETE', '/client-metadata-hosts/x'],
    ] as const) {
      const res = await call(
        method,
        path,
        method === 'GET' || method === 'DELETE' ? undefined : {},
        'Bearer dpk_wrong',
      )
      expect(res.status, `${method} ${path}`).toBe(401)
    }
    expect((await deputy.app.request('/admin/api/clients')).status).toBe(401)
    expect(await deputy.deps.clients.list()).toEqual([])
  })

  it('registers, lists and removes a resource with its scopes and claims template', async () => {
    const uri = 'https://shop.example/mcp'
    const created = await call('POST', '/resources', {
      uri,
      name: 'Shop',
      scopes: { 'shop:order': 'Order shirts for you' },
      claims_template: ['email', 'favorite_song'],
      is_default: true,
    })
    expect(created.status).toBe(201)
    expect(await created.json()).toEqual({
      uri,
      name: 'Shop',
      scopes: { 'shop:order': 'Order shirts for you' },
      claims_template: ['email', 'favorite_song'],
      is_default: true,
    })
    const list = (await (await call('GET', '/resources')).json()) as {
      resources: { uri: string }[]
    }
    expect(list.resources.map((r) => r.uri)).toEqual([uri])
    // RFC 8707: with no resource parameter, the default is used.
    expect((await deputy.deps.resources.resolve([])).uri).toBe(uri)

    const removed = await call('DELETE', `/resources/${encodeURIComponent(uri)}`)
    expect(removed.status).toBe(204)
    expect(await deputy.deps.resources.get(uri)).toBeUndefined()
    expect((await call('DELETE', `/resources/${encodeURIComponent(uri)}`)).status).toBe(404)
  })

  it.each([
    ['a relative URI', { uri: '/mcp', scopes: {} }, /resource must be an absolute http\(s\) URI/],
    ['a URI with a fragment', { uri: 'https://a.example/mcp#x', scopes: {} }, /without a fragment/],
    [
      'a scope without a sentence',
      { uri: 'https://a.example/mcp', scopes: { 'a:b': ' ' } },
      /needs a sentence/,
    ],
    [
      'a malformed scope name',
      { uri: 'https://a.example/mcp', scopes: { 'a b': 'x' } },
      /not a valid scope name/,
    ],
    [
      'an unknown field',
      { uri: 'https://a.example/mcp', scopes: {}, scope: 'x' },
      /scope is not a known field/,
    ],
  ])('refuses a resource with %s in one line', async (_case, body, message) => {
    const res = await call('POST', '/resources', body)
    expect(res.status).toBe(400)
    expect(((await res.json()) as { message: string }).message).toMatch(message)
  })

  it('creates a confidential client and shows its secret once; disable and delete end its grants', async () => {
    const res = await call('POST', '/clients', {
      name: 'My agent',
      redirect_uris: ['https://agent.example/cb'],
    })
    expect(res.status).toBe(201)
    const created = (await res.json()) as Record<string, unknown>
    expect(created).toMatchObject({
      name: 'My agent',
      kind: 'registered',
      token_endpoint_auth_method: 'client_secret_basic',
    })
    const id = created.client_id as string
    expect(await deputy.deps.clients.verifySecret(id, created.client_secret as string)).toBe(true)
    const listed = (await (await call('GET', '/clients')).json()) as { clients: object[] }
    expect(JSON.stringify(listed)).not.toContain(created.client_secret as string)

    const user = await deputy.deps.users.create({ email: 'ada@example.com', name: 'Ada' }, SYSTEM)
    const grant = await deputy.deps.grants.create({
      userId: user.id,
      clientId: id,
      resource: 'https://shop.example/mcp',
      scopes: ['shop:order'],
    })
    const disabled = await call('POST', `/clients/${id}/disable`)
    expect(disabled.status).toBe(200)
    expect(((await disabled.json()) as { status: string }).status).toBe('disabled')
    expect(await deputy.deps.grants.isActive(grant.id)).toBe(false)
    expect(await deputy.deps.clients.resolve(id)).toBeUndefined()

    const [event] = await tailAudit(deputy.deps.store, { limit: 1, type: 'client.disabled' })
    expect(event?.actor.id).toMatch(/^admin-key:/)

    expect((await call('DELETE', `/clients/${id}`)).status).toBe(204)
    expect(await deputy.deps.clients.get(id)).toBeUndefined()
    expect((await call('DELETE', `/clients/${id}`)).status).toBe(404)
    expect((await call('POST', `/clients/${id}/disable`)).status).toBe(404)
  })

  it('creates a public client without a secret', async () => {
    const res = await call('POST', '/clients', {
      name: 'CLI agent',
      redirect_uris: ['http://127.0.0.1:3000/callback'],
      public: true,
    })
    const body = (await res.json()) as Record<string, unknown>
    expect(body.token_endpoint_auth_method).toBe('none')
    expect(body).not.toHaveProperty('client_secret')
  })

  it.each([
    [
      'a javascript: redirect URI',
      { name: 'x', redirect_uris: ['javascript:alert(1)'] },
      /forbidden scheme/,
    ],
    [
      'an http redirect on a public host',
      { name: 'x', redirect_uris: ['http://a.example/cb'] },
      /loopback/,
    ],
    [
      'no redirect URI for the code flow',
      { name: 'x', grant_types: ['authorization_code'] },
      /at least one redirect URI/,
    ],
    [
      'a public client with client_credentials',
      { name: 'x', public: true, grant_types: ['client_credentials'] },
      /confidential client/,
    ],
    [
      'private_key_jwt without keys',
      {
        name: 'x',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
      },
      /jwks/,
    ],
    [
      'a misspelt field',
      { name: 'x', redirect_uri: ['https://a.example/cb'] },
      /redirect_uri is not a known field/,
    ],
  ])('refuses a client with %s', async (_case, body, message) => {
    const res = await call('POST', '/clients', body)
    expect(res.status).toBe(400)
    expect(((await res.json()) as { message: string }).message).toMatch(message)
  })

  it('allows a metadata-document host machine tokens at one resource, lists it and takes it back', async () => {
    await call('POST', '/resources', {
      uri: 'https://api.example/v1',
      scopes: { 'api:read': 'Read' },
    })
    const put = await call('PUT', '/client-metadata-hosts', {
      host: 'agents.example',
      resource: 'https://api.example/v1',
      scopes: ['api:read'],
    })
    expect(put.status).toBe(200)
    expect(await put.json()).toMatchObject({ host: 'agents.example', scopes: ['api:read'] })
    const listed = (await (await call('GET', '/client-metadata-hosts')).json()) as {
      hosts: { host: string }[]
    }
    expect(listed.hosts.map((h) => h.host)).toEqual(['agents.example'])
    const [event] = await tailAudit(deputy.deps.store, {
      limit: 1,
      type: 'client-metadata-host.allowed',
    })
    expect(event?.actor).toMatchObject({ type: 'system', label: 'ci' })
    const bad = await call('PUT', '/client-metadata-hosts', {
      host: 'agents.example',
      resource: 'https://api.example/v1',
      scopes: ['api:write'],
    })
    expect(bad.status).toBe(400)
    const gone = await call(
      'DELETE',
      `/client-metadata-hosts/agents.example?resource=${encodeURIComponent('https://api.example/v1')}`,
    )
    expect(gone.status).toBe(204)
    expect((await call('DELETE', '/client-metadata-hosts/agents.example')).status).toBe(404)
  })
})
