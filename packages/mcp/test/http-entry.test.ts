import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ServerType, serve } from '@hono/node-server'
import { createMcpHonoApp } from '@modelcontextprotocol/hono'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mcpEntryApp } from '../src/http-entry.js'

// The kit's HTTP entry stands in for the SDK's Hono adapter (createMcpHonoApp) and must answer
// every request the adapter refuses exactly as the adapter does: the same requests go to both,
// over real HTTP (@hono/node-server, the kit's usual server), and status, type and body compare.

const LIMIT = 1024
type Seen = { parsedBody: unknown }

function apps(options: Parameters<typeof mcpEntryApp>[0]) {
  const sdk = new Hono()
  const sdkMcp = createMcpHonoApp({
    ...options,
    allowedHosts: options.allowedHosts ? [...options.allowedHosts] : undefined,
    allowedOrigins: options.allowedOrigins ? [...options.allowedOrigins] : undefined,
    maxRequestBodySize: LIMIT,
  })
  sdkMcp.all('/', (c) =>
    Response.json({ parsedBody: (c.get as (key: string) => unknown)('parsedBody') ?? null }),
  )
  sdk.route('/mcp', sdkMcp)
  const kit = new Hono()
  kit.route(
    '/mcp',
    mcpEntryApp({ ...options, maxRequestBodySize: LIMIT }, async (_request, parsedBody) =>
      Response.json({ parsedBody: parsedBody ?? null }),
    ),
  )
  return { sdk, kit }
}

const servers: ServerType[] = []
async function listen(app: Hono): Promise<number> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  servers.push(server)
  await new Promise((resolve) => server.once('listening', resolve))
  return (server.address() as AddressInfo).port
}
afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve))
})

interface Sent {
  path?: string
  method?: string
  headers?: Record<string, string>
  /** Sent with a Content-Length, or chunked when given as several pieces. */
  body?: string | string[]
}

/** One raw HTTP request (node:http, so Host and chunking are the test's to choose). */
function send(port: number, sent: Sent): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const pieces = sent.body === undefined ? [] : [sent.body].flat()
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...sent.headers }
    if (typeof sent.body === 'string')
      headers['content-length'] = String(Buffer.byteLength(sent.body))
    const req = httpRequest(
      {
        port,
        host: '127.0.0.1',
        path: sent.path ?? '/mcp',
        method: sent.method ?? 'POST',
        headers,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => {
          body += d
        })
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body }),
        )
      },
    )
    req.on('error', reject)
    for (const piece of pieces) req.write(piece)
    req.end()
  })
}

const json = { 'content-type': 'application/json' }
const CASES: Array<[string, Sent]> = [
  ['a JSON-RPC body', { headers: json, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' }],
  ['a body in chunks', { headers: json, body: ['{"jsonrpc":"2.0",', '"id":1,"method":"ping"}'] }],
  ['a body with a byte-order mark', { headers: json, body: '\ufeff{"a":1}' }],
  [
    'a media type with parameters',
    { headers: { 'content-type': 'application/json; charset=utf-8' }, body: '[1]' },
  ],
  ['no JSON media type', { headers: { 'content-type': 'text/plain' }, body: '{"a":1}' }],
  ['a GET', { method: 'GET', headers: { accept: 'text/event-stream' } }],
  ['invalid JSON', { headers: json, body: '{"jsonrpc":' }],
  ['an empty body', { headers: json, body: '' }],
  ['a declared length over the limit', { headers: json, body: `"${'x'.repeat(LIMIT)}"` }],
  ['a chunked body over the limit', { headers: json, body: ['"', 'x'.repeat(LIMIT), '"'] }],
  ['a body of exactly the limit', { headers: json, body: `"${'x'.repeat(LIMIT - 2)}"` }],
  ['a foreign Host', { headers: { ...json, host: 'evil.example' }, body: '{}' }],
  ['a Host that does not parse', { headers: { ...json, host: 'a b' }, body: '{}' }],
  ['a foreign Origin', { headers: { ...json, origin: 'https://evil.example' }, body: '{}' }],
  ['the null Origin', { headers: { ...json, origin: 'null' }, body: '{}' }],
  ['an allowed Origin', { headers: { ...json, origin: 'http://localhost:3000' }, body: '{}' }],
  ['a foreign Host below the path', { path: '/mcp/other', headers: { host: 'evil.example' } }],
  ['a path below the endpoint', { path: '/mcp/other', headers: json, body: '{}' }],
]

describe.each([
  ['a localhost server', { host: '127.0.0.1' }],
  [
    'listed hosts and origins',
    { host: 'tools.example', allowedHosts: ['127.0.0.1'], allowedOrigins: ['app.example'] },
  ],
])('the kit HTTP entry answers as the SDK Hono adapter, %s', (_, options) => {
  let sdkPort: number
  let kitPort: number
  beforeAll(async () => {
    const { sdk, kit } = apps(options)
    sdkPort = await listen(sdk)
    kitPort = await listen(kit)
  })
  it.each(CASES)('%s', async (_, sent) => {
    const kit = await send(kitPort, sent)
    const sdk = await send(sdkPort, sent)
    expect(kit).toEqual(sdk)
  })
})

it('refuses a body over 4 MiB by default, and a limit that is not a positive number', async () => {
  const app = mcpEntryApp({ host: '127.0.0.1' }, async (_request, parsedBody) =>
    Response.json({ parsedBody }),
  )
  const response = await app.request('http://127.0.0.1/', {
    method: 'POST',
    headers: { host: '127.0.0.1', ...json, 'content-length': String(4 * 1024 * 1024 + 1) },
    body: '{}',
  })
  expect(response.status).toBe(413)
  expect(await response.json()).toEqual({
    jsonrpc: '2.0',
    error: {
      code: -32000,
      message: `Payload Too Large: Request body must not exceed ${4 * 1024 * 1024} bytes`,
    },
    id: null,
  })
  expect(() =>
    mcpEntryApp({ host: '127.0.0.1', maxRequestBodySize: 0 }, async () => new Response()),
  ).toThrow(RangeError)
})

it('hands the handler the request with its body read and the parsed value', async () => {
  let seen: Seen | undefined
  let used: boolean | undefined
  const app = mcpEntryApp({ host: '127.0.0.1' }, async (request, parsedBody) => {
    seen = { parsedBody }
    used = request.bodyUsed
    return new Response(null, { status: 204 })
  })
  const response = await app.request('http://127.0.0.1/', {
    method: 'POST',
    headers: { host: '127.0.0.1', ...json },
    body: '{"jsonrpc":"2.0","id":7,"method":"ping"}',
  })
  expect(response.status).toBe(204)
  expect(seen).toEqual({ parsedBody: { jsonrpc: '2.0', id: 7, method: 'ping' } })
  expect(used).toBe(true)
})
