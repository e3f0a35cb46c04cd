import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { startGateway, startIssuer } from './helpers.js'

const RULES = {
  tools: {
    delete_everything: { scopes: ['tools:admin'] },
    audit_report: { roles: ['auditor'] },
  },
  default: { scopes: ['tools:use'] },
  hideForbiddenTools: true,
}

type Issuer = Awaited<ReturnType<typeof startIssuer>>
type Upstream = Awaited<ReturnType<typeof startHttpUpstream>>
type Running = Awaited<ReturnType<typeof startGateway>>

let issuer: Issuer
let upstream: Upstream
let gw: Running

beforeAll(async () => {
  issuer = await startIssuer()
  upstream = await startHttpUpstream()
  gw = await startGateway({
    issuer: issuer.issuer,
    upstream: httpUpstream({ url: upstream.url }),
    rules: RULES,
  })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await issuer?.close()
})

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1' },
  },
}

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(gw.resource, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  })
}

async function connect(claims: Record<string, unknown>): Promise<Client> {
  const token = await issuer.token({ aud: gw.resource, ...claims })
  const client = new Client(
    { name: 'gateway-test', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  )
  client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: 'accept',
    content: { name: 'Ada' },
  }))
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gw.resource), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  )
  return client
}

const text = (result: unknown) =>
  ((result as { content: { type: string; text?: string }[] }).content[0] as { text?: string }).text

describe('discovery (RFC 9728)', () => {
  it('publishes the gateway as the resource, the issuer and every scope the rules name', async () => {
    const response = await fetch(gw.gateway.resourceMetadataUrl)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      resource: gw.resource,
      authorization_servers: [issuer.issuer],
      scopes_supported: ['tools:admin', 'tools:use'],
      bearer_methods_supported: ['header'],
    })
  })
})

describe('token checks (MCP authorization "Token Handling")', () => {
  it('answers a request without a token 401 with a bare challenge and never reaches the upstream', async () => {
    const before = upstream.seen.length
    const response = await post(initialize)
    expect(response.status).toBe(401)
    const challenge = response.headers.get('www-authenticate') ?? ''
    expect(challenge).toContain(`resource_metadata="${gw.gateway.resourceMetadataUrl}"`)
    expect(challenge).toContain('scope="tools:admin tools:use"')
    expect(challenge).not.toContain('error=')
    expect(upstream.seen.length).toBe(before)
  })

  it('refuses a token signed by another key with invalid_token', async () => {
    const token = await issuer.token({ aud: gw.resource }, { foreignKey: true })
    const response = await post(initialize, { authorization: `Bearer ${token}` })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
  })

  it('refuses a token issued for another resource (RFC 8707 audience) with invalid_token', async () => {
    const before = upstream.seen.length
    const token = await issuer.token({ aud: upstream.url })
    const response = await post(initialize, { authorization: `Bearer ${token}` })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(upstream.seen.length).toBe(before)
  })
})

describe('pass-through with a valid token', () => {
  it('carries tools, resources, prompts, log notifications, progress and elicitation both ways', async () => {
    const client = await connect({ scope: 'tools:use' })
    try {
      expect(client.getServerVersion()?.name).toBe('gateway-test-upstream')
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe(
        'echo: hi',
      )

      const resource = await client.readResource({ uri: 'note://hello' })
      expect(resource.contents[0]).toMatchObject({ uri: 'note://hello', text: 'hello, note' })
      const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'Bo' } })
      expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Please greet Bo' })

      const logs: unknown[] = []
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs.push(n.params.data)
      })
      const progress: number[] = []
      const counted = await client.callTool({ name: 'count', arguments: { n: 3 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      })
      expect(text(counted)).toBe('counted to 3')
      expect(progress).toEqual([1, 2, 3])
      expect(logs).toEqual(['counting to 3'])

      // The upstream asks the client a question mid-call; the answer goes back through the gateway.
      expect(text(await client.callTool({ name: 'ask_name', arguments: {} }))).toBe('hello Ada')
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
    const aliceToken = await issuer.token({ aud: gw.resource, scope: 'tools:use' })
    const opened = await post(initialize, { authorization: `Bearer ${aliceToken}` })
    const sessionId = opened.headers.get('mcp-session-id')
    expect(sessionId).toBeTruthy()
    await opened.body?.cancel()
    const bobToken = await issuer.token({ aud: gw.resource, sub: 'bob', scope: 'tools:use' })
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
    const token = await issuer.token({ aud: gw.resource, scope: 'tools:use' })
    const before = upstream.seen.length
    const response = await post(
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'delete_everything' } },
      { authorization: `Bearer ${token}` },
    )
    expect(response.status).toBe(403)
    const challenge = response.headers.get('www-authenticate') ?? ''
    expect(challenge).toContain('error="insufficient_scope"')
    expect(challenge).toContain('scope="tools:admin"')
    expect(challenge).toContain(`resource_metadata="${gw.gateway.resourceMetadataUrl}"`)
    expect(upstream.seen.length).toBe(before)
  })

  it('applies the default rule to tools the file does not name', async () => {
    const token = await issuer.token({ aud: gw.resource, scope: 'tools:admin' })
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
    const token = await issuer.token({ aud: gw.resource, scope: 'tools:use tools:admin' })
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
    gw.events.length = 0
    const client = await connect({ scope: 'tools:use', sub: 'carol' })
    try {
      await client.callTool({ name: 'echo', arguments: { text: 'secret address' } })
      await client.callTool({ name: 'fail', arguments: {} })
      await client.callTool({ name: 'audit_report', arguments: {} })
    } finally {
      await client.close()
    }
    const token = await issuer.token({ aud: gw.resource, sub: 'carol', scope: 'tools:use' })
    await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_everything' } },
      { authorization: `Bearer ${token}` },
    )
    const seen = gw.events.map((event) => [event.tool, event.type, event.decision, event.outcome])
    expect(seen).toEqual([
      ['echo', 'tool.allowed', 'allow', undefined],
      ['echo', 'tool.called', 'allow', 'success'],
      ['fail', 'tool.allowed', 'allow', undefined],
      ['fail', 'tool.called', 'allow', 'error'],
      ['audit_report', 'tool.refused', 'deny', 'refused'],
      ['delete_everything', 'tool.refused', 'insufficient_scope', 'refused'],
    ])
    // A call's decision and outcome share its id; each call has its own.
    const ids = gw.events.map((event) => event.callId)
    expect(ids[0]).toBe(ids[1])
    expect(ids[2]).toBe(ids[3])
    expect(new Set(ids).size).toBe(4)
    for (const event of gw.events) {
      expect(event).toMatchObject({ sub: 'carol', clientId: 'agent-1', resource: gw.resource })
      expect(event.argumentsDigest).toMatch(/^sha-256:/)
    }
    expect(JSON.stringify(gw.events)).not.toContain('secret address')
  })
})
