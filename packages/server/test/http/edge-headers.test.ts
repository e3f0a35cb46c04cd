import { Writable } from 'node:stream'
import { Hono } from 'hono'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AppEnv } from '../../src/http/env.js'
import { errorResponse } from '../../src/http/errors.js'
import {
  CONTENT_SECURITY_POLICY,
  edgeResponse,
  requestContext,
  securityHeaders,
} from '../../src/http/middleware.js'
import { basic, createWorld, postForm, RESOURCE, type World } from '../oauth/token-helpers.js'

/** The security headers every response must carry, whatever built it. */
function expectSecurityHeaders(response: Response, options: { https: boolean }): void {
  const h = response.headers
  expect(h.get('content-security-policy')).toBeTruthy()
  expect(h.get('x-frame-options')).toBe('DENY')
  expect(h.get('x-content-type-options')).toBe('nosniff')
  expect(h.get('referrer-policy')).toBe('no-referrer')
  expect(h.get('cross-origin-opener-policy')).toBe('same-origin')
  expect(h.get('permissions-policy')).toBe('camera=(), microphone=(), geolocation=()')
  if (options.https) {
    expect(h.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains')
  } else {
    expect(h.get('strict-transport-security')).toBeNull()
  }
  expect(h.get('x-request-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
}

describe('security headers and request id on token responses', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld({ config: { issuer: 'https://auth.example.com' } })
  })
  afterEach(() => world.deputy.dispose())

  const token = (headers: Record<string, string> = {}) =>
    postForm(
      world,
      '/token',
      { grant_type: 'client_credentials', resource: RESOURCE },
      { ...basic(world.agent.client.clientId, world.agent.secret), ...headers },
    )

  it('an issued token’s response carries every security header and a request id', async () => {
    const response = await token()
    expect(response.status).toBe(200)
    expectSecurityHeaders(response, { https: true })
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('pragma')).toBe('no-cache')
    expect(response.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY)
  })

  it('keeps a well-formed incoming request id, and replaces a malformed one', async () => {
    const kept = await token({ 'x-request-id': 'trace-42' })
    expect(kept.status).toBe(200)
    expect(kept.headers.get('x-request-id')).toBe('trace-42')
    const replaced = await token({ 'x-request-id': 'no spaces allowed' })
    expect(replaced.status).toBe(200)
    expect(replaced.headers.get('x-request-id')).not.toBe('no spaces allowed')
    expectSecurityHeaders(replaced, { https: true })
  })

  it('a refused token request carries them too', async () => {
    const response = await postForm(
      world,
      '/token',
      { grant_type: 'client_credentials', resource: RESOURCE },
      basic(world.agent.client.clientId, 'wrong-secret'),
    )
    expect(response.status).toBe(401)
    expectSecurityHeaders(response, { https: true })
  })
})

describe('edge middleware on any handler', () => {
  function app(logger = pino({ level: 'silent' })) {
    const a = new Hono<AppEnv>()
    a.use(requestContext(logger))
    a.use(securityHeaders({ https: false }))
    a.onError(errorResponse)
    a.get('/edge', (c) =>
      edgeResponse(c, 'ok', 200, {
        'Content-Type': 'text/plain',
        'Content-Security-Policy': "default-src 'none'; form-action https://elsewhere.example",
        // A handler cannot weaken the fixed headers.
        'X-Frame-Options': 'ALLOWALL',
        'X-Request-Id': 'forged',
      }),
    )
    a.get('/edge-plain', (c) =>
      edgeResponse(c, 'ok', 200, {
        'Content-Type': 'text/plain',
        'Content-Security-Policy': "default-src 'none'; form-action https://elsewhere.example",
      }),
    )
    a.get('/edge-lower', (c) =>
      edgeResponse(c, 'ok', 200, {
        'content-security-policy': "default-src 'self'",
        'x-frame-options': 'SAMEORIGIN',
        'x-request-id': 'forged',
      }),
    )
    a.get('/raw', () => new Response('raw', { headers: { 'X-Frame-Options': 'SAMEORIGIN' } }))
    a.get('/json', (c) => c.json({ ok: true }))
    a.get('/page', (c) =>
      c.html('<p>page</p>', 200, { 'Content-Security-Policy': "default-src 'self'" }),
    )
    a.get('/boom', () => {
      throw new Error('unexpected')
    })
    return a
  }

  it('gives responses built by edgeResponse, raw Responses, c.json, c.html and errors the same headers', async () => {
    for (const path of [
      '/edge',
      '/edge-plain',
      '/edge-lower',
      '/raw',
      '/json',
      '/page',
      '/boom',
      '/missing',
    ]) {
      const response = await app().request(path)
      expectSecurityHeaders(response, { https: false })
      if (!['/edge', '/edge-plain', '/edge-lower', '/page'].includes(path)) {
        expect(response.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY)
      }
    }
  })

  it('lets a handler set its own CSP but never weaken the others or forge the request id', async () => {
    const edge = await app().request('/edge', { headers: { 'x-request-id': 'incoming-1' } })
    expect(edge.headers.get('content-security-policy')).toContain('https://elsewhere.example')
    expect(edge.headers.get('x-frame-options')).toBe('DENY')
    expect(edge.headers.get('x-request-id')).toBe('incoming-1')
    const plain = await app().request('/edge-plain', { headers: { 'x-request-id': 'incoming-2' } })
    expect(plain.headers.get('content-security-policy')).toContain('https://elsewhere.example')
    expect(plain.headers.get('x-request-id')).toBe('incoming-2')
    // Names in another case are not sent twice: one value each, the edge's where it must win.
    const lower = await app().request('/edge-lower', { headers: { 'x-request-id': 'incoming-3' } })
    expect(lower.headers.get('content-security-policy')).toBe("default-src 'self'")
    expect(lower.headers.get('x-frame-options')).toBe('DENY')
    expect(lower.headers.get('x-request-id')).toBe('incoming-3')
    const raw = await app().request('/raw')
    expect(raw.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY)
    expect(raw.headers.get('x-frame-options')).toBe('DENY')
    const page = await app().request('/page')
    expect(page.headers.get('content-security-policy')).toBe("default-src 'self'")
  })

  it('edgeResponse outside the edge middleware is a plain response', async () => {
    const bare = new Hono<AppEnv>()
    bare.get('/', (c) => edgeResponse(c, 'ok', 200, { 'Content-Type': 'text/plain' }))
    const response = await bare.request('/')
    expect(await response.text()).toBe('ok')
    expect(response.headers.get('x-request-id')).toBeNull()
    expect(response.headers.get('x-frame-options')).toBeNull()
  })

  it('logs each request with its id, method, path and status, never the query string', async () => {
    const lines: Record<string, unknown>[] = []
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
        done()
      },
    })
    const logger = pino({ level: 'info' }, sink)
    await app(logger).request('/json?code=secret-code', { headers: { 'x-request-id': 'log-1' } })
    const line = lines.find((l) => l.msg === 'request')
    expect(line).toMatchObject({ requestId: 'log-1', method: 'GET', path: '/json', status: 200 })
    expect(JSON.stringify(lines)).not.toContain('secret-code')
  })
})
