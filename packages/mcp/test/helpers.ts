import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ServerType, serve } from '@hono/node-server'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import { afterAll } from 'vitest'
import type { ProtectedMcpServer } from '../src/index.js'

/** A signing key of the test authorization server. */
export interface TestKey {
  kid: string
  privateKey: CryptoKey
  jwk: JWK
}

export async function makeKey(kid: string, alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      closers.push(() => new Promise((done) => server.close(() => done())))
      resolve(`http://127.0.0.1:${port}`)
    })
  })
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => resolve(body))
  })
}

/** An introspection call as the test authorization server saw it. */
export interface IntrospectionCall {
  authorization: string | undefined
  form: URLSearchParams
}

/**
 * A stand-in authorization server on 127.0.0.1: publishes a JWKS whose keys the test can change,
 * and answers RFC 7662 introspection from a table the test fills. Counts what it is asked.
 */
export async function startAuthorizationServer() {
  const state = {
    keys: [] as TestKey[],
    jwksFetches: 0,
    introspections: [] as IntrospectionCall[],
    active: new Map<string, Record<string, unknown>>(),
  }
  const server = createServer(async (request, response) => {
    if (request.url === '/jwks') {
      state.jwksFetches += 1
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify({ keys: state.keys.map((key) => key.jwk) }))
      return
    }
    if (request.url === '/introspect' && request.method === 'POST') {
      const form = new URLSearchParams(await readBody(request))
      state.introspections.push({ authorization: request.headers.authorization, form })
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify(state.active.get(form.get('token') ?? '') ?? { active: false }))
      return
    }
    response.statusCode = 404
    response.end()
  })
  const issuer = await listen(server)
  return { issuer, jwksUri: `${issuer}/jwks`, introspectionEndpoint: `${issuer}/introspect`, state }
}

/** Signs an RFC 9068 access token; `claims` and `header` override the defaults. */
export async function mintToken(
  key: TestKey,
  claims: JWTPayload & Record<string, unknown>,
  header: { typ?: string; alg?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ iat: now, exp: now + 300, jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({
      alg: header.alg ?? key.jwk.alg ?? 'ES256',
      typ: header.typ ?? 'at+jwt',
      kid: key.kid,
    })
    .sign(key.privateKey)
}

/**
 * Serves a protected MCP server on 127.0.0.1. The port is only known once listening, and the
 * resource URL contains it, so `build` receives the resource and returns the kit.
 */
export async function startMcpServer(
  build: (resource: string) => ProtectedMcpServer,
): Promise<{ resource: string; kit: ProtectedMcpServer; origin: string }> {
  let kit: ProtectedMcpServer | undefined
  const server: ServerType = await new Promise((resolve) => {
    const started = serve(
      {
        fetch: (request) => (kit as ProtectedMcpServer).fetch(request),
        hostname: '127.0.0.1',
        port: 0,
      },
      () => resolve(started),
    )
  })
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  const resource = `${origin}/mcp`
  kit = build(resource)
  closers.push(async () => {
    await kit?.close()
    await new Promise<void>((done) => server.close(() => done()))
  })
  return { resource, kit, origin }
}

/** The two kinds of client the kit must serve. */
export const eras = ['2026-07-28', '2025-11-25'] as const
export type Era = (typeof eras)[number]

/** Connects the official v2 client with a bearer token, speaking the given protocol era. */
export async function connect(resource: string, token: string, era: Era): Promise<Client> {
  const client = new Client(
    { name: 'deputy-mcp-test', version: '1.0.0' },
    era === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {},
  )
  const transport = new StreamableHTTPClientTransport(new URL(resource), {
    authProvider: { token: async () => token },
    onInsufficientScope: 'throw',
  })
  await client.connect(transport)
  closers.push(() => client.close())
  return client
}

/** The text of a tool result's first content block. */
export function text(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? []
  return content[0]?.text ?? ''
}

/** A raw 2026-07-28 `tools/call` POST, for asserting on HTTP status and headers; `mcpNameHeader` may lie. */
export function rawToolCall(
  resource: string,
  token: string,
  name: string,
  args: Record<string, unknown> = {},
  mcpNameHeader = name,
) {
  return fetch(resource, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': mcpNameHeader,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name,
        arguments: args,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
  })
}
