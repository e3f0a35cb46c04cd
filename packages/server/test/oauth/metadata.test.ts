import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system', id: 'test' } as const

describe('authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0)', () => {
  let deputy: TestDeputy

  beforeAll(async () => {
    deputy = await startTestDeputy({ config: { issuer: 'http://localhost:8080' } })
    await deputy.deps.resources.put(
      {
        uri: 'http://localhost:3001/mcp',
        scopes: { 'shop:order': 'Order shirts for you', 'shop:read': 'See your orders' },
      },
      SYSTEM,
    )
  })
  afterAll(() => deputy?.dispose())

  async function metadata(path: string): Promise<Record<string, unknown>> {
    const res = await deputy.app.request(path)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    return (await res.json()) as Record<string, unknown>
  }

  it('RFC 8414 §3.3: issuer is exactly the configured issuer, endpoints hang off it', async () => {
    const doc = await metadata('/.well-known/oauth-authorization-server')
    expect(doc).toMatchObject({
      issuer: 'http://localhost:8080',
      authorization_endpoint: 'http://localhost:8080/authorize',
      token_endpoint: 'http://localhost:8080/token',
      jwks_uri: 'http://localhost:8080/jwks',
      registration_endpoint: 'http://localhost:8080/register',
      revocation_endpoint: 'http://localhost:8080/revoke',
      introspection_endpoint: 'http://localhost:8080/introspect',
      userinfo_endpoint: 'http://localhost:8080/userinfo',
    })
  })

  it('advertises what Deputy does and nothing it refuses (perf-security §7 test 45)', async () => {
    const doc = await metadata('/.well-known/oauth-authorization-server')
    expect(doc.response_types_supported).toEqual(['code'])
    expect(doc.code_challenge_methods_supported).toEqual(['S256'])
    expect(doc.grant_types_supported).toEqual([
      'authorization_code',
      'refresh_token',
      'client_credentials',
      'urn:openid:params:grant-type:ciba',
      'urn:ietf:params:oauth:grant-type:token-exchange',
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
    ])
    expect(doc.grant_types_supported).not.toContain('password')
    expect(doc.grant_types_supported).not.toContain('implicit')
    expect(doc.token_endpoint_auth_methods_supported).toEqual([
      'none',
      'client_secret_basic',
      'client_secret_post',
      'private_key_jwt',
    ])
    expect(doc.token_endpoint_auth_signing_alg_values_supported).toContain('ES256')
    expect(doc.token_endpoint_auth_signing_alg_values_supported).not.toContain('none')
    expect(doc.token_endpoint_auth_signing_alg_values_supported).not.toContain('HS256')
    expect(doc.authorization_response_iss_parameter_supported).toBe(true)
    expect(doc.client_id_metadata_document_supported).toBe(true)
    expect(doc.request_uri_parameter_supported).toBe(false)
  })

  it('lists the OIDC scopes and every resource scope in scopes_supported', async () => {
    const doc = await metadata('/.well-known/oauth-authorization-server')
    expect(doc.scopes_supported).toEqual([
      'openid',
      'profile',
      'email',
      'offline_access',
      'shop:order',
      'shop:read',
    ])
  })

  it('OIDC Discovery §3: the same document with the required OIDC fields', async () => {
    const doc = await metadata('/.well-known/openid-configuration')
    expect(doc.issuer).toBe('http://localhost:8080')
    expect(doc.subject_types_supported).toEqual(['public'])
    expect(doc.id_token_signing_alg_values_supported).toEqual(['ES256'])
    // MCP security-considerations: an OIDC document MUST carry code_challenge_methods_supported.
    expect(doc.code_challenge_methods_supported).toEqual(['S256'])
  })

  it('answers CORS preflights for the metadata and the JWKS', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/jwks']) {
      const res = await deputy.app.request(path, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://localhost:6274',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'mcp-protocol-version',
        },
      })
      expect(res.status).toBe(204)
      expect(res.headers.get('access-control-allow-origin')).toBe('*')
    }
    const jwks = await deputy.app.request('/jwks')
    expect(jwks.headers.get('access-control-allow-origin')).toBe('*')
  })
})

describe('metadata of an issuer with a path (RFC 8414 §3.1, OIDC Discovery §4, MCP discovery order)', () => {
  let deputy: TestDeputy
  beforeAll(async () => {
    deputy = await startTestDeputy({ config: { issuer: 'http://localhost:8080/tenant' } })
  })
  afterAll(() => deputy?.dispose())

  it.each([
    '/.well-known/oauth-authorization-server/tenant',
    '/.well-known/openid-configuration/tenant',
    '/tenant/.well-known/openid-configuration',
  ])('serves %s with the issuer exactly as configured', async (path) => {
    const res = await deputy.app.request(path)
    expect(res.status).toBe(200)
    const doc = (await res.json()) as Record<string, unknown>
    expect(doc.issuer).toBe('http://localhost:8080/tenant')
    expect(doc.token_endpoint).toBe('http://localhost:8080/tenant/token')
  })

  it('does not serve another tenant path', async () => {
    const res = await deputy.app.request('/.well-known/oauth-authorization-server/other')
    expect(res.status).toBe(404)
  })
})

describe('metadata with dynamic registration switched off', () => {
  let deputy: TestDeputy
  beforeAll(async () => {
    deputy = await startTestDeputy({ config: { dynamicRegistration: false } })
  })
  afterAll(() => deputy?.dispose())

  it('omits registration_endpoint', async () => {
    const res = await deputy.app.request('/.well-known/oauth-authorization-server')
    const doc = (await res.json()) as Record<string, unknown>
    expect(doc).not.toHaveProperty('registration_endpoint')
    expect(doc.token_endpoint).toBe('http://localhost:8080/token')
  })
})
