import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { loadConfig } from '../../src/config/load.js'
import { isPublicAddress, safeFetch } from '../../src/lib/safe-fetch.js'
import { metadataTtlSeconds } from '../../src/oauth/cimd.js'
import { createClients } from '../../src/oauth/clients.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'

function manualClock(start = Date.parse('2026-03-01T09:00:00Z')) {
  let now = start
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000
    },
  }
}

describe('Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP client-registration)', () => {
  let docs: DocumentServer
  let deputy: TestDeputy
  const clock = manualClock()

  beforeAll(async () => {
    docs = await startDocumentServer()
    deputy = await startTestDeputy({
      clock,
      config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
    })
  })
  afterAll(async () => {
    await deputy?.dispose()
    await docs?.close()
  })

  let n = 0
  /** Serves a valid document at a fresh path and returns its URL (the client_id). */
  function serveDocument(
    overrides: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): string {
    const path = `/agents/${++n}/client.json`
    const url = `${docs.origin}${path}`
    docs.routes.set(
      path,
      json(
        {
          client_id: url,
          client_name: 'Shirt Agent',
          redirect_uris: ['http://127.0.0.1:3000/callback', 'https://agent.example/cb'],
          ...overrides,
        },
        headers,
      ),
    )
    return url
  }

  const pathOf = (url: string) => new URL(url).pathname

  async function refusal(clientId: string): Promise<string | null> {
    const events = await tailAudit(deputy.deps.store, {
      limit: 50,
      type: 'client-metadata.refused',
    })
    return events.filter((e) => e.target?.id === clientId).at(-1)?.reason ?? null
  }

  it('resolves a URL client_id to the client its document describes, redirect URIs included', async () => {
    const url = serveDocument({
      client_uri: 'https://agent.example',
      logo_uri: 'https://agent.example/logo.png',
    })
    const client = await deputy.deps.clients.resolve(url)
    expect(client).toMatchObject({
      clientId: url,
      kind: 'metadata_document',
      name: 'Shirt Agent',
      status: 'active',
      redirectUris: ['http://127.0.0.1:3000/callback', 'https://agent.example/cb'],
      tokenEndpointAuthMethod: 'none',
      grantTypes: ['authorization_code', 'refresh_token'],
      clientUri: 'https://agent.example',
    })
    expect((await deputy.deps.clients.list()).map((c) => c.clientId)).toContain(url)
  })

  it('caches the document per Cache-Control max-age and fetches it again once that has passed', async () => {
    const url = serveDocument({}, { 'cache-control': 'max-age=600' })
    await deputy.deps.clients.resolve(url)
    await deputy.deps.clients.resolve(url)
    expect(docs.hits.get(pathOf(url))).toBe(1)
    clock.advance(599)
    await deputy.deps.clients.resolve(url)
    expect(docs.hits.get(pathOf(url))).toBe(1)
    // The document changed in the meantime: the refetch picks up its new redirect URIs.
    docs.routes.set(
      pathOf(url),
      json({
        client_id: url,
        client_name: 'Shirt Agent 2',
        redirect_uris: ['https://agent.example/new'],
      }),
    )
    clock.advance(2)
    const client = await deputy.deps.clients.resolve(url)
    expect(docs.hits.get(pathOf(url))).toBe(2)
    expect(client?.redirectUris).toEqual(['https://agent.example/new'])
    expect(client?.name).toBe('Shirt Agent 2')
  })

  it('caps the cache lifetime at 24 hours and keeps a no-store document for one minute', () => {
    expect(metadataTtlSeconds('public, max-age=31536000')).toBe(24 * 3600)
    expect(metadataTtlSeconds('no-store')).toBe(60)
    expect(metadataTtlSeconds(undefined)).toBe(3600)
    expect(metadataTtlSeconds('max-age=120')).toBe(120)
  })

  it('fetches a document requested by several sign-ins at once only once', async () => {
    const url = serveDocument()
    const results = await Promise.all([1, 2, 3, 4].map(() => deputy.deps.clients.resolve(url)))
    expect(results.every((c) => c?.clientId === url)).toBe(true)
    expect(docs.hits.get(pathOf(url))).toBe(1)
  })

  it('keeps a disabled metadata-document client disabled and does not fetch it again', async () => {
    const url = serveDocument({}, { 'cache-control': 'max-age=60' })
    expect(await deputy.deps.clients.resolve(url)).toBeDefined()
    await deputy.deps.clients.disable(url, { type: 'system', id: 'test' })
    clock.advance(3600)
    expect(await deputy.deps.clients.resolve(url)).toBeUndefined()
    expect(docs.hits.get(pathOf(url))).toBe(1)
  })

  describe('documents that are refused (resolve gives no client; the reason is audited)', () => {
    it.each([
      [
        'its client_id differs from its URL',
        { client_id: 'https://other.example/client.json' },
        /client_id does not equal its URL/,
      ],
      ['client_name is missing', { client_name: undefined }, /client_name/],
      ['redirect_uris is missing', { redirect_uris: undefined }, /redirect_uris/],
      ['redirect_uris is empty', { redirect_uris: [] }, /redirect_uris/],
      [
        'a redirect URI is javascript:',
        { redirect_uris: ['javascript:alert(1)'] },
        /redirect_uris.0 uses the forbidden scheme/,
      ],
      [
        'a redirect URI is http on a public host',
        { redirect_uris: ['http://agent.example/cb'] },
        /redirect_uris.0 may use http only on a loopback host/,
      ],
      ['it carries a client_secret', { client_secret: 's3cret' }, /client_secret/],
      [
        'it asks for client_secret_basic',
        { token_endpoint_auth_method: 'client_secret_basic' },
        /token_endpoint_auth_method/,
      ],
      ['private_key_jwt without keys', { token_endpoint_auth_method: 'private_key_jwt' }, /jwks/],
    ])('when %s', async (_case, overrides, reason) => {
      const url = serveDocument(overrides)
      expect(await deputy.deps.clients.resolve(url)).toBeUndefined()
      expect(await refusal(url)).toMatch(reason)
      expect(await deputy.deps.clients.get(url)).toBeUndefined()
    })

    it('when the body is not JSON', async () => {
      const url = `${docs.origin}/not-json/client.json`
      docs.routes.set(pathOf(url), json('<html>hello</html>'))
      expect(await deputy.deps.clients.resolve(url)).toBeUndefined()
      expect(await refusal(url)).toBe('document is not valid JSON')
    })

    it('when the document URL answers 404', async () => {
      const url = `${docs.origin}/missing/client.json`
      expect(await deputy.deps.clients.resolve(url)).toBeUndefined()
      expect(await refusal(url)).toBe('document URL answered 404')
    })

    it('when the document is larger than 64 KiB (declared or streamed)', async () => {
      const big = serveDocument({ padding: 'x'.repeat(70 * 1024) })
      expect(await deputy.deps.clients.resolve(big)).toBeUndefined()
      expect(await refusal(big)).toMatch(/larger than 65536 bytes/)

      const streamed = `${docs.origin}/streamed/client.json`
      docs.routes.set(pathOf(streamed), (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }) // chunked, no length
        for (let i = 0; i < 80; i++) res.write('x'.repeat(1024))
        res.end()
      })
      expect(await deputy.deps.clients.resolve(streamed)).toBeUndefined()
      expect(await refusal(streamed)).toMatch(/larger than 65536 bytes/)
    })

    it('when the document URL redirects, even to another document on loopback (redirects are not followed)', async () => {
      const target = serveDocument()
      const url = `${docs.origin}/redirecting/client.json`
      docs.routes.set(pathOf(url), (_req, res) => res.writeHead(302, { location: target }).end())
      expect(await deputy.deps.clients.resolve(url)).toBeUndefined()
      expect(await refusal(url)).toMatch(/answered 302 \(redirects are not followed\)/)
      expect(docs.hits.get(pathOf(target))).toBeUndefined()
    })

    it('when the server does not answer within the deadline', async () => {
      const url = `${docs.origin}/slow/client.json`
      docs.routes.set(pathOf(url), () => {
        // Never answers; the connection is closed when the test server stops.
      })
      const clients = createClients({
        ...deputy.deps,
        config: deputy.config,
        metadataFetch: { timeoutMs: 100 },
      })
      expect(await clients.resolve(url)).toBeUndefined()
      expect(await refusal(url)).toBe('no complete answer within 100 ms')
    })
  })
})

describe('SSRF guard for client metadata fetches (perf-security §7 test 33)', () => {
  let docs: DocumentServer
  let deputy: TestDeputy

  beforeAll(async () => {
    docs = await startDocumentServer()
    // The development setting is off, as in production.
    deputy = await startTestDeputy({ logger: pino({ level: 'silent' }) })
  })
  afterAll(async () => {
    await deputy?.dispose()
    await docs?.close()
  })
  afterEach(() => {
    // Nothing the guard refused ever reached the loopback server.
    expect([...docs.hits.values()].reduce((a, b) => a + b, 0)).toBe(0)
  })

  async function refusal(clientId: string): Promise<string | null> {
    const events = await tailAudit(deputy.deps.store, {
      limit: 100,
      type: 'client-metadata.refused',
    })
    return events.filter((e) => e.target?.id === clientId).at(-1)?.reason ?? null
  }

  const port = () => new URL(docs.origin).port

  it.each([
    [
      'loopback IPv4',
      () => `https://127.0.0.1:${port()}/client.json`,
      /address 127\.0\.0\.1 is not a public address/,
    ],
    [
      'loopback IPv6',
      () => `https://[::1]:${port()}/client.json`,
      /address ::1 is not a public address/,
    ],
    [
      'the cloud metadata service',
      () => 'https://169.254.169.254/latest/meta-data',
      /169\.254\.169\.254 is not a public/,
    ],
    ['a private address', () => 'https://10.0.0.1/client.json', /10\.0\.0\.1 is not a public/],
    ['192.168/16', () => 'https://192.168.1.1/client.json', /192\.168\.1\.1 is not a public/],
    [
      'hexadecimal loopback',
      () => `https://0x7f000001:${port()}/client.json`,
      /not in normalised form/,
    ],
    [
      'decimal loopback',
      () => `https://2130706433:${port()}/client.json`,
      /not in normalised form/,
    ],
    [
      'IPv4-mapped IPv6 loopback',
      () => `https://[::ffff:7f00:1]:${port()}/client.json`,
      /::ffff:7f00:1 is not a public address/,
    ],
    ['unique-local IPv6', () => 'https://[fd00::1]/client.json', /fd00::1 is not a public address/],
    [
      '0.0.0.0',
      () => `https://0.0.0.0:${port()}/client.json`,
      /0\.0\.0\.0 is not a public address/,
    ],
    [
      'a host name that resolves to loopback',
      () => `https://localhost:${port()}/client.json`,
      /(127\.0\.0\.1|::1) is not a public address/,
    ],
    ['plain http', () => `http://127.0.0.1:${port()}/client.json`, /must use https/],
    ['a URL without a path', () => 'https://agent.example', /must have a path/],
    ['a URL with only a root path', () => 'https://agent.example/', /must have a path/],
    [
      'a URL with user information',
      () => 'https://user:pw@agent.example/c.json',
      /user information/,
    ],
    ['a URL with dot segments', () => 'https://agent.example/a/../c.json', /normalised form/],
  ])('refuses %s without connecting', async (_case, url, reason) => {
    const clientId = url()
    expect(await deputy.deps.clients.resolve(clientId)).toBeUndefined()
    expect(await refusal(clientId)).toMatch(reason)
  })

  it('the address check itself refuses the mapped and decimal forms after parsing', async () => {
    // The URL parser turns 0x7f000001 and 2130706433 into 127.0.0.1; safeFetch checks what it becomes.
    for (const host of ['0x7f000001', '2130706433', '[::ffff:127.0.0.1]']) {
      await expect(safeFetch(`https://${host}:${port()}/c.json`)).rejects.toMatchObject({
        reason: expect.stringMatching(/is not a public address/),
      })
    }
    expect(isPublicAddress('93.184.216.34')).toBe(true)
    expect(isPublicAddress('2606:4700::1111')).toBe(true)
    for (const a of [
      '127.0.0.1',
      '::1',
      '169.254.169.254',
      '10.0.0.1',
      '172.16.0.1',
      '100.64.0.1',
      '::ffff:10.0.0.1',
      'fe80::1',
      '0.0.0.0',
    ])
      expect(isPublicAddress(a)).toBe(false)
  })

  it('with allowed hosts set, refuses every other host before resolving it', async () => {
    const clients = createClients({
      ...deputy.deps,
      config: {
        clientMetadataAllowedHosts: ['agents.example'],
        dangerouslyAllowHttpLoopbackClientMetadata: true,
      },
    })
    const url = `${docs.origin}/client.json`
    expect(await clients.resolve(url)).toBeUndefined()
    expect(await refusal(url)).toBe('host 127.0.0.1 is not in the allowed hosts')
  })

  it('with the development setting on, still refuses private and link-local addresses', async () => {
    await expect(
      safeFetch('http://169.254.169.254/latest/meta-data', { allowHttpLoopback: true }),
    ).rejects.toMatchObject({ reason: 'address 169.254.169.254 is not a public address' })
    await expect(safeFetch('http://10.0.0.1/x', { allowHttpLoopback: true })).rejects.toMatchObject(
      { reason: 'address 10.0.0.1 is not a public address' },
    )
  })

  it('refuses the development setting in production mode, with one clear line', () => {
    expect(() =>
      loadConfig({
        env: {
          DEPUTY_MODE: 'production',
          DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_CLIENT_METADATA: 'true',
        },
      }),
    ).toThrow(
      'invalid setting "dangerouslyAllowHttpLoopbackClientMetadata": is a development setting and is refused in production mode',
    )
    expect(
      loadConfig({ env: { DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_CLIENT_METADATA: 'true' } })
        .dangerouslyAllowHttpLoopbackClientMetadata,
    ).toBe(true)
  })
})
