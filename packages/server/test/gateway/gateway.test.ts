import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { expectCarriedBothWays, gatewayFixture, INITIALIZE, text } from './helpers.js'

const RULES = {
  tools: {
    delete_everything: { scopes: ['tools:admin'] },
    audit_report: { roles: ['auditor'] },
  },
  default: { scopes: ['tools:use'] },
  hideForbiddenTools: true,
}

let upstream: Awaited<ReturnType<typeof startHttpUpstream>>
beforeAll(async () => {
  upstream = await startHttpUpstream()
})
afterAll(async () => {
  await upstream?.close()
})

const f = gatewayFixture({ upstream: () => httpUpstream({ url: upstream.url }), rules: RULES })
const { post, connect } = f

describe('discovery (RFC 9728)', () => {
  it('publishes the gateway as the resource, the issuer and every scope the rules name', async () => {
    const response = await fetch(f.gw.gateway.resourceMetadataUrl)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      resource: f.gw.resource,
      authorization_servers: [f.issuer.issuer],
      scopes_supported: ['tools:admin', 'tools:use'],
      bearer_methods_supported: ['header'],
    })
  })
})

describe('token checks (MCP authorization "Token Handling")', () => {
  it('answers a request without a token 401 with a bare challenge and never reaches the upstream', async () => {
    const before = upstream.seen.length
    const response = await post(INITIALIZE)
    expect(response.status).toBe(401)
    const challenge = response.headers.get('www-authenticate') ?? ''
    expect(challenge).toContain(`resource_metadata="${f.gw.gateway.resourceMetadataUrl}"`)
    expect(challenge).toContain('scope="tools:admin tools:use"')
    expect(challenge).not.toContain('error=')
    expect(upstream.seen.length).toBe(before)
  })

  it('refuses a token signed by another key with invalid_token', async () => {
    const token = await f.issuer.token({ aud: f.gw.resource }, { foreignKey: true })
    const response = await post(INITIALIZE, { authorization: `Bearer ${token}` })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
  })

  it('refuses a token issued for another resource (RFC 8707 audience) with invalid_token', async () => {
    const before = upstream.seen.length
    const token = await f.issuer.token({ aud: upstream.url })
    const response = await post(INITIALIZE, { authorization: `Bearer ${token}` })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(upstream.seen.length).toBe(before)
  })
})

describe('pass-through with a valid token', () => {
  it('carries tools, resources, prompts, log notifications, progress and elicitation both ways', async () => {
    const client = await connect({ scope: 'tools:use' })
    try {
      await expectCarriedBothWays(client)
    } finally {
      await client.close()
    }
  })

  it('never passes the Authorization header upstream, and passes the session and version headers', async () => {
    const client = await connect({ scope: 'tools:use' })
    await client.callTool({ name: 'echo', arguments: { text: 'x' } })
    await client.close()
    expect(upstream.seen.length).toBeGreaterThan(0)
    for (const request of upstream.seen) expect(request.headers.authorization).toBeUndefined()
    const later = upstream.seen.filter((request) => request.headers['mcp-session-id'] !== undefined)
    expect(later.length).toBeGreaterThan(0)
    expect(later.every((request) => request.headers['mcp-protocol-version'] !== undefined)).toBe(
      true,
    )
  })

  it('keeps a session to the person who opened it: another token gets 404', async () => {
    const aliceToken = await f.issuer.token({ aud: f.gw.resource, scope: 'tools:use' })
    const opened = await post(INITIALIZE, { authorization: `Bearer ${aliceToken}` })
    const sessionId = opened.headers.get('mcp-session-id')
    expect(sessionId).toBeTruthy()
    await opened.body?.cancel()
    const bobToken = await f.issuer.token({ aud: f.gw.resource, sub: 'bob', scope: 'tools:use' })
    const response = await post(
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      {
        authorization: `Bearer ${bobToken}`,
        'mcp-session-id': sessionId as string,
        'mcp-protocol-version': '2025-11-25',
      },
    )
    expect(response.status).toBe(404)
  })
})

describe('per-tool rules', () => {
  it('answers a call short of scope 403 insufficient_scope naming the scopes, before the upstream', async () => {
    const token = await f.issuer.token({ aud: f.gw.resource, scope: 'tools:use' })
    const before = upstream.seen.length
    const response = await post(
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'delete_everything' } },
      { authorization: `Bearer ${token}` },
    )
    expect(response.status).toBe(403)
    const challenge = response.headers.get('www-authenticate') ?? ''
    expect(challenge).toContain('error="insufficient_scope"')
    expect(challenge).toContain('scope="tools:admin"')
    expect(challenge).toContain(`resource_metadata="${f.gw.gateway.resourceMetadataUrl}"`)
    expect(upstream.seen.length).toBe(before)
  })

  it('applies the default rule to tools the file does not name', async () => {
    const token = await f.issuer.token({ aud: f.gw.resource, scope: 'tools:admin' })
    const response = await post(
      { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'echo' } },
      { authorization: `Bearer ${token}` },
    )
    expect(response.status).toBe(403)
    expect(response.headers.get('www-authenticate')).toContain('scope="tools:use"')
  })

  it('refuses a call without the role as a tool error, and hides the tool from tools/list', async () => {
    const client = await connect({ scope: 'tools:use' })
    try {
      const refused = await client.callTool({ name: 'audit_report', arguments: {} })
      expect(refused.isError).toBe(true)
      expect(text(refused)).toBe('You do not have a role that may call audit_report.')
      const names = (await client.listTools()).tools.map((tool) => tool.name)
      expect(names).toContain('echo')
      expect(names).toContain('delete_everything') // short of scope only: stays, to step up
      expect(names).not.toContain('audit_report')
    } finally {
      await client.close()
    }
    const auditor = await connect({ scope: 'tools:use', roles: ['auditor'] })
    try {
      expect(text(await auditor.callTool({ name: 'audit_report', arguments: {} }))).toBe(
        'the report',
      )
      expect((await auditor.listTools()).tools.map((tool) => tool.name)).toContain('audit_report')
    } finally {
      await auditor.close()
    }
  })

  it('refuses a call whose Mcp-Name header names another tool than its body', async () => {
    const token = await f.issuer.token({ aud: f.gw.resource, scope: 'tools:use tools:admin' })
    const response = await post(
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'audit_report' } },
      { authorization: `Bearer ${token}`, 'mcp-name': 'echo' },
    )
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32020)
  })
})

describe('audit', () => {
  it('reports every tool call: who, which agent, which tool, decision and outcome, no arguments', async () => {
    f.gw.events.length = 0
    const client = await connect({ scope: 'tools:use', sub: 'carol' })
    try {
      await client.callTool({ name: 'echo', arguments: { text: 'secret address' } })
      await client.callTool({ name: 'fail', arguments: {} })
      await client.callTool({ name: 'audit_report', arguments: {} })
    } finally {
      await client.close()
    }
    const token = await f.issuer.token({ aud: f.gw.resource, sub: 'carol', scope: 'tools:use' })
    await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_everything' } },
      { authorization: `Bearer ${token}` },
    )
    const seen = f.gw.events.map((event) => [event.tool, event.type, event.decision, event.outcome])
    expect(seen).toEqual([
      ['echo', 'tool.allowed', 'allow', undefined],
      ['echo', 'tool.called', 'allow', 'success'],
      ['fail', 'tool.allowed', 'allow', undefined],
      ['fail', 'tool.called', 'allow', 'error'],
      ['audit_report', 'tool.refused', 'deny', 'refused'],
      ['delete_everything', 'tool.refused', 'insufficient_scope', 'refused'],
    ])
    // A call's decision and outcome share its id; each call has its own.
    const ids = f.gw.events.map((event) => event.callId)
    expect(ids[0]).toBe(ids[1])
    expect(ids[2]).toBe(ids[3])
    expect(new Set(ids).size).toBe(4)
    for (const event of f.gw.events) {
      expect(event).toMatchObject({ sub: 'carol', clientId: 'agent-1', resource: f.gw.resource })
      expect(event.argumentsDigest).toMatch(/^sha-256:/)
    }
    expect(JSON.stringify(f.gw.events)).not.toContain('secret address')
  })
})
