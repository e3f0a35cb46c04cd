import type { AuditHook, ToolCallEvent } from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { afterAll, beforeAll, expect } from 'vitest'
import { issuerJwtVerifier } from '../../src/gateway/authorization-server.js'
import { createGateway, type Gateway } from '../../src/gateway/gateway.js'
import { type GatewayRules, parseRules } from '../../src/gateway/rules.js'
import type { Upstream } from '../../src/gateway/upstream.js'

/** A listening server and its base URL. */
export async function listenOn(
  fetch: (request: Request) => Response | Promise<Response>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

/**
 * A stand-in authorization server: RFC 8414 metadata and a JWKS on 127.0.0.1, and RFC 9068 access
 * tokens signed with its key. The gateway works with any issuer, so the tests need no Deputy.
 */
export async function startIssuer(): Promise<{
  issuer: string
  token(claims: JWTPayload & { aud: string }, options?: { foreignKey?: boolean }): Promise<string>
  close(): Promise<void>
}> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const foreign = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  let issuer = ''
  const server = await listenOn((request) => {
    const path = new URL(request.url).pathname
    if (path === '/.well-known/oauth-authorization-server') {
      return Response.json({
        issuer,
        jwks_uri: `${issuer}/jwks`,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
      })
    }
    if (path === '/jwks') return Response.json({ keys: [jwk] })
    return new Response(null, { status: 404 })
  })
  issuer = server.url
  return {
    issuer,
    async token(claims, options = {}) {
      return new SignJWT({ client_id: 'agent-1', sub: 'alice', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(crypto.randomUUID())
        .sign(options.foreignKey ? foreign.privateKey : privateKey)
    },
    close: () => server.close(),
  }
}

/**
 * A gateway on 127.0.0.1 in front of `upstream`, its audit events collected (after `audit`, when
 * given, accepted them: a hook that throws records nothing).
 */
export async function startGateway(options: {
  issuer: string
  upstream: Upstream
  rules?: unknown
  audit?: AuditHook
  auditFailure?: 'refuse' | 'continue'
}): Promise<{
  resource: string
  gateway: Gateway
  events: ToolCallEvent[]
  errors: Error[]
  close(): Promise<void>
}> {
  let gateway: Gateway | undefined
  const server = await listenOn(
    (request) => gateway?.fetch(request) ?? new Response(null, { status: 503 }),
  )
  const resource = `${server.url}/mcp`
  const events: ToolCallEvent[] = []
  const errors: Error[] = []
  const rules: GatewayRules | undefined =
    options.rules === undefined ? undefined : parseRules(options.rules)
  gateway = createGateway({
    resource,
    authorizationServers: [options.issuer],
    verifier: issuerJwtVerifier({ issuer: options.issuer, audience: resource }),
    upstream: options.upstream,
    ...(rules !== undefined && { rules }),
    audit: async (event) => {
      await options.audit?.(event)
      events.push(event)
    },
    ...(options.auditFailure !== undefined && { auditFailure: options.auditFailure }),
    onError: (error) => errors.push(error),
  })
  const running = gateway
  return {
    resource,
    gateway: running,
    events,
    errors,
    async close() {
      await running.close()
      await server.close()
    },
  }
}

/** The `initialize` request a raw HTTP client opens an MCP session with. */
export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1' },
  },
}

/** The text of a tool result's first block. */
export const text = (result: unknown) =>
  ((result as { content: { type: string; text?: string }[] }).content[0] as { text?: string }).text

/**
 * The gateway a test file exercises, whatever its upstream (HTTP or a child process over stdio):
 * a stand-in issuer and a gateway with `rules`, started before the file's tests and closed after
 * them. `upstream` is called once the file's own `beforeAll` hooks before this one have run.
 */
export function gatewayFixture(options: { upstream: () => Upstream; rules?: unknown }) {
  let issuer: Awaited<ReturnType<typeof startIssuer>> | undefined
  let gw: Awaited<ReturnType<typeof startGateway>> | undefined
  beforeAll(async () => {
    issuer = await startIssuer()
    gw = await startGateway({
      issuer: issuer.issuer,
      upstream: options.upstream(),
      rules: options.rules,
    })
  })
  afterAll(async () => {
    await gw?.close()
    await issuer?.close()
  })
  const started = () => {
    if (!issuer || !gw) throw new Error('the gateway fixture has not started')
    return { issuer, gw }
  }
  return {
    get issuer() {
      return started().issuer
    },
    get gw() {
      return started().gw
    },
    /** POSTs a JSON-RPC body to the gateway as a raw HTTP client would. */
    post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
      return fetch(started().gw.resource, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
        body: JSON.stringify(body),
      })
    },
    /** An SDK client through the gateway with a token carrying `claims`; it answers elicitation with Ada. */
    async connect(claims: Record<string, unknown> = {}): Promise<Client> {
      const { issuer, gw } = started()
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
    },
  }
}

/**
 * Tools, resources, prompts, log notifications, progress and elicitation (the upstream asks the
 * client a question mid-call) all carried both ways through the gateway, to the test upstream.
 */
export async function expectCarriedBothWays(client: Client): Promise<void> {
  expect(client.getServerVersion()?.name).toBe('gateway-test-upstream')
  expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe('echo: hi')

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

  expect(text(await client.callTool({ name: 'ask_name', arguments: {} }))).toBe('hello Ada')
}
