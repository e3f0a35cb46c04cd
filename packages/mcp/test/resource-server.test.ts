import { UnauthorizedError } from '@modelcontextprotocol/client'
import { beforeAll, describe, expect, it } from 'vitest'
import { bearerChallenge, jwtVerifier, protectMcpServer } from '../src/index.js'
import {
  connect,
  makeKey,
  mintToken,
  startAuthorizationServer,
  startMcpServer,
  type TestKey,
  text,
} from './helpers.js'

let as: Awaited<ReturnType<typeof startAuthorizationServer>>
let key: TestKey
let resource: string
let origin: string
const errors: Error[] = []

beforeAll(async () => {
  as = await startAuthorizationServer()
  key = await makeKey('rs-1')
  as.state.keys = [key]
  ;({ resource, origin } = await startMcpServer((resource) => {
    const kit = protectMcpServer({
      resource,
      authorizationServers: [as.issuer],
      verifier: jwtVerifier({ issuer: as.issuer, jwksUri: as.jwksUri, audience: resource }),
      server: { name: 'rs', version: '1.0.0' },
      resourceName: 'Test shop',
      onError: (error) => {
        errors.push(error)
      },
    })
    kit.tool('ping', { scopes: ['shop.read'] }, {}, () => ({
      content: [{ type: 'text', text: 'pong' }],
    }))
    kit.tool('order', { scopes: ['shop.buy'] }, {}, () => ({
      content: [{ type: 'text', text: 'ok' }],
    }))
    return kit
  }))
})

const prmPath = '/.well-known/oauth-protected-resource/mcp'

describe('RFC 9728 Protected Resource Metadata', () => {
  for (const path of [prmPath, '/.well-known/oauth-protected-resource']) {
    it(`is served at ${path} with the resource, its authorization servers and header-only bearer use`, async () => {
      const response = await fetch(`${origin}${path}`, {
        headers: { origin: 'https://client.example' },
      })
      expect(response.status).toBe(200)
      expect(response.headers.get('access-control-allow-origin')).toBe('*')
      expect(await response.json()).toEqual({
        resource,
        authorization_servers: [as.issuer],
        scopes_supported: ['shop.read', 'shop.buy'],
        bearer_methods_supported: ['header'],
        resource_name: 'Test shop',
      })
    })
  }

  it('answers a CORS preflight from any origin', async () => {
    const response = await fetch(`${origin}${prmPath}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://client.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'mcp-protocol-version',
      },
    })
    expect(response.status).toBe(204)
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
    expect(response.headers.get('access-control-allow-headers')).toBe('mcp-protocol-version')
  })

  it('refuses to write to the metadata document', async () => {
    const response = await fetch(`${origin}${prmPath}`, { method: 'POST' })
    expect(response.status).toBe(405)
  })

  it('never lists offline_access: the factory refuses it as a resource scope', () => {
    expect(() =>
      protectMcpServer({
        resource: 'https://shop.example/mcp',
        authorizationServers: ['https://auth.example'],
        scopesSupported: ['shop.read', 'offline_access'],
        verifier: async () => ({ ok: false, reason: 'missing' }),
        server: { name: 'x', version: '1' },
      }),
    ).toThrow(/offline_access/)
  })

  it('refuses a tool rule naming a scope the metadata does not publish', () => {
    const kit = protectMcpServer({
      resource: 'https://shop.example/mcp',
      authorizationServers: ['https://auth.example'],
      scopesSupported: ['shop.read'],
      verifier: async () => ({ ok: false, reason: 'missing' }),
      server: { name: 'x', version: '1' },
    })
    expect(() => kit.tool('buy', { scopes: ['shop.buy'] }, {}, () => ({ content: [] }))).toThrow(
      /shop\.buy/,
    )
    expect(() =>
      kit.tool('read', { scopes: ['shop.read'] }, {}, () => ({ content: [] })),
    ).not.toThrow()
  })

  it('refuses a plain-http resource that is not on loopback, and unknown options', () => {
    const base = {
      authorizationServers: ['https://auth.example'],
      verifier: async () => ({ ok: false, reason: 'missing' }) as const,
      server: { name: 'x', version: '1' },
    }
    expect(() => protectMcpServer({ ...base, resource: 'http://shop.example/mcp' })).toThrow(
      /resource/,
    )
    expect(() =>
      protectMcpServer({ ...base, resource: 'https://shop.example/mcp', scope: 'x' } as never),
    ).toThrow(/scope/)
  })
})

describe('401 challenges (RFC 6750 §3, RFC 9728 §5.1)', () => {
  const post = (headers: Record<string, string> = {}) =>
    fetch(resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
  const metadataUrl = () => `${origin}${prmPath}`

  it('is bare when the request carries no credentials, with resource_metadata and scope', async () => {
    const response = await post()
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${metadataUrl()}", scope="shop.read shop.buy", DPoP algs="ES256 ES384 ES512 EdDSA Ed25519 RS256 RS384 RS512 PS256 PS384 PS512"`,
    )
  })

  it('names invalid_token when the token is bad', async () => {
    const response = await post({ authorization: 'Bearer not.a.token' })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer error="invalid_token", error_description="The access token is not valid for this resource", resource_metadata="${metadataUrl()}", scope="shop.read shop.buy", DPoP algs="ES256 ES384 ES512 EdDSA Ed25519 RS256 RS384 RS512 PS256 PS384 PS512"`,
    )
    expect(await response.json()).toEqual({
      error: 'invalid_token',
      error_description: 'The access token is not valid for this resource',
    })
  })

  it('treats another authentication scheme as no credentials', async () => {
    const response = await post({ authorization: 'Basic dXNlcjpwYXNz' })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).not.toContain('error=')
  })

  it('refuses two bearer tokens at once as a malformed request', async () => {
    const token = await mintToken(key, { iss: as.issuer, aud: resource, sub: 'u' })
    const response = await post({ authorization: `Bearer ${token}, Bearer ${token}` })
    expect(response.status).toBe(400)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_request"')
  })

  it('ignores a token in the query string (MCP: header only)', async () => {
    const token = await mintToken(key, {
      iss: as.issuer,
      aud: resource,
      sub: 'u',
      scope: 'shop.read',
    })
    const response = await fetch(`${resource}?access_token=${token}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(response.status).toBe(401)
  })

  it('lets the official client discover the resource metadata from the challenge', async () => {
    const error = await connect(resource, '', '2026-07-28').then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(UnauthorizedError)
  })
})

describe('bearerChallenge', () => {
  it('escapes quotes and backslashes and drops non-printable characters in quoted strings', () => {
    expect(
      bearerChallenge({
        error: 'invalid_token',
        errorDescription: 'bad "token" \\ here\r\nInjected: yes',
        resourceMetadata: 'https://rs.example/.well-known/oauth-protected-resource/mcp',
      }),
    ).toBe(
      'Bearer error="invalid_token", error_description="bad \\"token\\" \\\\ here  Injected: yes", resource_metadata="https://rs.example/.well-known/oauth-protected-resource/mcp"',
    )
  })

  it('is the bare scheme when given nothing', () => {
    expect(bearerChallenge({})).toBe('Bearer')
  })
})

describe('JWT access token checks', () => {
  const claims = () => ({ iss: as.issuer, aud: resource, sub: 'user-9', scope: 'shop.read' })
  const call = async (token: string) => {
    const response = await fetch(resource, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 't', version: '1' },
        },
      }),
    })
    return { status: response.status, challenge: response.headers.get('www-authenticate') }
  }

  it('accepts a token minted for exactly this resource', async () => {
    const client = await connect(resource, await mintToken(key, claims()), '2025-11-25')
    expect(text(await client.callTool({ name: 'ping', arguments: {} }))).toBe('pong')
  })

  it.each<[string, Record<string, unknown>]>([
    ['another resource', { aud: 'https://other.example/mcp' }],
    ['this resource and another one', { aud: ['RESOURCE', 'https://other.example/mcp'] }],
    ['no audience', { aud: undefined }],
    ['another issuer', { iss: 'https://evil.example' }],
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 120 }],
    ['a token not valid yet', { nbf: Math.floor(Date.now() / 1000) + 120 }],
    ['no subject', { sub: undefined }],
  ])('refuses %s with invalid_token, never passing it on', async (_, override) => {
    // 'RESOURCE' stands for this server's URL, which is only known once it listens.
    const resolved = Object.fromEntries(
      Object.entries(override).map(([name, value]) => [
        name,
        Array.isArray(value) ? value.map((item) => (item === 'RESOURCE' ? resource : item)) : value,
      ]),
    )
    const token = await mintToken(key, { ...claims(), ...resolved })
    const { status, challenge } = await call(token)
    expect(status).toBe(401)
    expect(challenge).toContain('error="invalid_token"')
  })

  it('says an expired token expired, so the client refreshes', async () => {
    const { challenge } = await call(
      await mintToken(key, { ...claims(), exp: Math.floor(Date.now() / 1000) - 120 }),
    )
    expect(challenge).toContain('error_description="The access token expired"')
  })

  it('refuses a token whose typ is not at+jwt (RFC 9068 §4), e.g. an ID token', async () => {
    expect((await call(await mintToken(key, claims(), { typ: 'JWT' }))).status).toBe(401)
    expect((await call(await mintToken(key, claims(), { typ: 'application/at+jwt' }))).status).toBe(
      200,
    )
  })

  it('refuses a token signed by a key the issuer does not publish', async () => {
    const stranger = await makeKey('rs-1')
    expect((await call(await mintToken(stranger, claims()))).status).toBe(401)
  })
})

describe('JWKS cache', () => {
  it('refetches once on an unknown kid, then at most once per cooldown', async () => {
    const server = await startAuthorizationServer()
    const first = await makeKey('first')
    server.state.keys = [first]
    let now = Date.parse('2030-01-01T00:00:00Z')
    const verify = jwtVerifier({
      issuer: server.issuer,
      jwksUri: server.jwksUri,
      audience: 'https://rs.example/mcp',
      jwksCooldownSeconds: 30,
      clock: () => new Date(now),
    })
    const exp = now / 1000 + 300
    const sign = (k: TestKey, kid = k.kid) =>
      mintToken(
        { ...k, kid },
        { iss: server.issuer, aud: 'https://rs.example/mcp', sub: 'u', iat: now / 1000, exp },
      )

    expect((await verify(await sign(first))).ok).toBe(true)
    expect(server.state.jwksFetches).toBe(1)

    // The issuer rotates in a new key; a token signed with it arrives after the cooldown.
    const second = await makeKey('second')
    server.state.keys = [first, second]
    now += 31_000
    expect((await verify(await sign(second))).ok).toBe(true)
    expect(server.state.jwksFetches).toBe(2)

    // A flood of made-up key ids within the cooldown costs the issuer nothing more.
    const forged = await makeKey('forged')
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, index) =>
        verify(await sign(forged, `made-up-${index}`)),
      ),
    )
    expect(results.every((result) => !result.ok && result.reason === 'unknown_key')).toBe(true)
    expect(server.state.jwksFetches).toBe(2)

    // After the cooldown, one unknown kid triggers exactly one more fetch.
    now += 31_000
    expect(await verify(await sign(forged, 'made-up-again'))).toEqual({
      ok: false,
      reason: 'unknown_key',
    })
    expect(server.state.jwksFetches).toBe(3)
  })

  it('answers 503, not a challenge, when the issuer’s keys cannot be fetched', async () => {
    const { origin: deadOrigin, resource: deadResource } = await startMcpServer((resource) =>
      protectMcpServer({
        resource,
        authorizationServers: ['http://127.0.0.1:9'],
        verifier: jwtVerifier({
          issuer: 'http://127.0.0.1:9',
          jwksUri: 'http://127.0.0.1:9/jwks',
          audience: resource,
        }),
        server: { name: 'x', version: '1' },
        onError: (error) => {
          errors.push(error)
        },
      }),
    )
    expect(deadOrigin).toMatch(/^http:\/\/127\.0\.0\.1:/)
    const token = await mintToken(key, { iss: 'http://127.0.0.1:9', aud: deadResource, sub: 'u' })
    const response = await fetch(deadResource, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    })
    expect(response.status).toBe(503)
    expect(response.headers.get('www-authenticate')).toBeNull()
    expect(errors.some((error) => error.message.includes('could not be checked'))).toBe(true)
  })
})
