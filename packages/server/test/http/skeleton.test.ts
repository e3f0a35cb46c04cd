import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

describe('HTTP skeleton', () => {
  let deputy: TestDeputy
  beforeAll(async () => {
    deputy = await startTestDeputy()
  })
  afterAll(() => deputy.dispose())

  it('answers /healthz and /readyz', async () => {
    expect(await (await deputy.app.request('/healthz')).json()).toEqual({ status: 'ok' })
    const ready = await deputy.app.request('/readyz')
    expect(ready.status).toBe(200)
  })

  it('gives every response a request id and security headers', async () => {
    const res = await deputy.app.request('/healthz')
    expect(res.headers.get('x-request-id')).toMatch(/^[\w-]+$/)
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('keeps a well-formed incoming request id and replaces a malformed one', async () => {
    const kept = await deputy.app.request('/healthz', { headers: { 'x-request-id': 'abc-123' } })
    expect(kept.headers.get('x-request-id')).toBe('abc-123')
    const replaced = await deputy.app.request('/healthz', {
      headers: { 'x-request-id': 'bad id\u0001' },
    })
    expect(replaced.headers.get('x-request-id')).not.toContain(' ')
  })

  it('sends a person opening the bare URL to their account page', async () => {
    const res = await deputy.app.request('/')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/account')
  })

  it('answers unknown routes with a JSON 404 naming the route', async () => {
    const res = await deputy.app.request('/nope')
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({
      error: 'not_found',
      message: 'no route for GET /nope',
    })
  })

  it('publishes the signing keys as a JWKS with CORS, no private parts', async () => {
    const res = await deputy.app.request('/jwks')
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    const jwks = (await res.json()) as { keys: Record<string, unknown>[] }
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
    expect(jwks.keys[0]).not.toHaveProperty('d')
  })
})
