import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { tailAudit } from '../../src/audit/query.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { startUpstreamProvider, type UpstreamProvider } from '../helpers/upstream-provider.js'

const SYSTEM = { type: 'system', id: 'test' } as const

describe('admin API for upstream providers (issue 12 §1)', () => {
  let deputy: TestDeputy
  let upstream: UpstreamProvider
  let key: string

  beforeAll(async () => {
    upstream = await startUpstreamProvider()
    deputy = await startTestDeputy({ config: { dangerouslyAllowHttpLoopbackProviders: true } })
    key = (await createAdminApiKeys(deputy.deps).create('ci', SYSTEM)).key
  })
  afterAll(async () => {
    await deputy?.dispose()
    await upstream?.close()
  })

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
      ['GET', '/providers'],
      ['POST', '/providers'],
      ['GET', '/providers/x'],
      ['PATCH', '/providers/x'],
      ['DELETE', '/providers/x'],
      ['POST', '/providers/x/disable'],
      ['POST', '/providers/x/enable'],
    ] as const) {
      const res = await call(method, path, method === 'GET' ? undefined : {}, 'Bearer dpk_wrong')
      expect(res.status, `${method} ${path}`).toBe(401)
    }
    expect(await deputy.deps.providers.list()).toEqual([])
  })

  it('adds (discovered), gets, changes, disables, enables and removes; the secret never comes back', async () => {
    const created = await call('POST', '/providers', {
      name: 'corp',
      type: 'oidc',
      issuer: upstream.issuer,
      client_id: upstream.clientId,
      client_secret: upstream.clientSecret,
      uses: ['sign-in', 'connect'],
      allowed_clients: ['agent-1'],
    })
    expect(created.status).toBe(201)
    expect(created.headers.get('cache-control')).toBe('no-store')
    const text = await created.text()
    expect(text).not.toContain(upstream.clientSecret)
    const body = JSON.parse(text) as Record<string, unknown>
    expect(body).toMatchObject({
      name: 'corp',
      type: 'oidc',
      has_client_secret: true,
      issuer: upstream.issuer,
      allowed_clients: ['agent-1'],
      status: 'active',
    })
    expect((await call('GET', '/providers/corp')).status).toBe(200)
    const listed = (await (await call('GET', '/providers')).json()) as { providers: unknown[] }
    expect(listed.providers).toHaveLength(1)

    const patched = await call('PATCH', '/providers/corp', {
      display_name: 'Corp SSO',
      scopes: ['openid', 'email'],
    })
    expect(patched.status).toBe(200)
    expect(await patched.json()).toMatchObject({
      display_name: 'Corp SSO',
      scopes: ['openid', 'email'],
    })

    expect(await (await call('POST', '/providers/corp/disable')).json()).toMatchObject({
      status: 'disabled',
    })
    expect(await (await call('POST', '/providers/corp/enable')).json()).toMatchObject({
      status: 'active',
    })
    expect((await call('DELETE', '/providers/corp')).status).toBe(204)
    expect((await call('GET', '/providers/corp')).status).toBe(404)

    const audited = (await tailAudit(deputy.deps.store, { limit: 20 })).filter((e) =>
      e.type.startsWith('provider.'),
    )
    expect(audited.map((e) => e.type)).toEqual([
      'provider.added',
      'provider.updated',
      'provider.disabled',
      'provider.enabled',
      'provider.removed',
    ])
    expect(JSON.stringify(audited)).not.toContain(upstream.clientSecret)
    expect(audited[0]?.actor).toMatchObject({
      type: 'system',
      label: expect.stringContaining('ci'),
    })
  })

  it('answers mistakes with one message naming the field', async () => {
    const unknownField = await call('POST', '/providers', {
      name: 'x',
      type: 'github',
      client_id: 'a',
      client_secert: 'oops',
    })
    expect(unknownField.status).toBe(400)
    expect(JSON.stringify(await unknownField.json())).toMatch(/client_secert/)
    const badType = await call('POST', '/providers', { name: 'x', type: 'nope', client_id: 'a' })
    expect(badType.status).toBe(400)
    const mismatch = await call('POST', '/providers', {
      name: 'x',
      type: 'oidc',
      client_id: 'a',
      issuer: `${upstream.issuer}/elsewhere`,
    })
    expect(mismatch.status).toBe(400)
    expect((await call('PATCH', '/providers/nope', {})).status).toBe(404)
    expect((await call('POST', '/providers/nope/disable')).status).toBe(404)
    await call('POST', '/providers', { name: 'dup', type: 'github', client_id: 'a' })
    expect(
      (await call('POST', '/providers', { name: 'dup', type: 'github', client_id: 'a' })).status,
    ).toBe(409)
  })

  it('openapi.json describes the provider routes', async () => {
    const doc = (await (await call('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>
    }
    expect(Object.keys(doc.paths['/providers'] ?? {}).sort()).toEqual(['get', 'post'])
    expect(Object.keys(doc.paths['/providers/{name}'] ?? {}).sort()).toEqual([
      'delete',
      'get',
      'patch',
    ])
    expect(doc.paths['/providers/{name}/disable']?.post).toBeTruthy()
    expect(doc.paths['/providers/{name}/enable']?.post).toBeTruthy()
  })
})
