import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { stdioUpstream } from '../../src/gateway/upstream-stdio.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { INITIALIZE, startGateway, startIssuer } from './helpers.js'

// The gateway judges what it parsed; an upstream whose parser is more lenient (Python's json takes
// NaN, other parsers keep the first of two duplicate keys) must never see bytes the gateway could
// not read, nor read a request otherwise than the gateway did. So nothing it cannot parse as
// JSON-RPC goes on, and what goes on is its own serialisation of what it parsed.

const UPSTREAM = fileURLToPath(new URL('./fixtures/upstream.mjs', import.meta.url))
const RULES = { tools: { audit_report: { roles: ['auditor'] } } }

const encoder = new TextEncoder()
const concat = (...parts: (string | number[])[]) =>
  Buffer.concat(
    parts.map((part) => Buffer.from(typeof part === 'string' ? encoder.encode(part) : part)),
  )
const call = (name: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name }, ...extra })
const validCall = call('echo', { params: { name: 'echo', arguments: { text: 'x' } } })
let nested = '"deep"'
for (let i = 0; i < 5000; i++) nested = `[${nested}]`

interface OddInput {
  readonly name: string
  readonly body: string | Uint8Array
  readonly contentType?: string | null
  readonly headers?: Record<string, string>
  readonly status: number
  readonly code: number
}

const PARSE_ERROR = -32700
const INVALID_REQUEST = -32600
const INVALID_PARAMS = -32602

const ODD: OddInput[] = [
  { name: 'a body that is not JSON', body: 'not json', status: 400, code: PARSE_ERROR },
  { name: 'an empty body', body: '', status: 400, code: PARSE_ERROR },
  {
    name: 'NaN, which Python’s json accepts',
    body: '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":NaN}}}',
    status: 400,
    code: PARSE_ERROR,
  },
  {
    name: 'a second JSON text after the first',
    body: `{"jsonrpc":"2.0","id":4,"method":"ping"} ${call('audit_report')}`,
    status: 400,
    code: PARSE_ERROR,
  },
  {
    name: 'a comment',
    body: '{"jsonrpc":"2.0",/* hi */"id":5,"method":"ping"}',
    status: 400,
    code: PARSE_ERROR,
  },
  {
    name: 'bytes that are not UTF-8',
    body: concat(
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"',
      [0xff, 0xc0],
      '"}}}',
    ),
    status: 400,
    code: PARSE_ERROR,
  },
  {
    name: 'UTF-16 with a byte order mark',
    body: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(validCall, 'utf16le')]),
    status: 400,
    code: PARSE_ERROR,
  },
  {
    name: 'UTF-16 without a byte order mark',
    body: Buffer.from(validCall, 'utf16le'),
    status: 400,
    code: PARSE_ERROR,
  },
  {
    name: 'a raw NUL byte',
    body: '{"jsonrpc":"2.0","id":5,"method":"ping\u0000"}',
    status: 400,
    code: PARSE_ERROR,
  },
  { name: 'a JSON string', body: '"tools/call"', status: 400, code: INVALID_REQUEST },
  { name: 'JSON null', body: 'null', status: 400, code: INVALID_REQUEST },
  { name: 'an empty batch', body: '[]', status: 400, code: INVALID_REQUEST },
  {
    name: 'a batch holding junk',
    body: `[${call('echo')},1]`,
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a batch holding a message without jsonrpc',
    body: `[${call('echo')},{"id":6,"method":"tools/call","params":{"name":"audit_report"}}]`,
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a batch of more than 100 messages',
    body: `[${Array.from({ length: 101 }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"ping"}`).join(',')}]`,
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a batch repeating a request id',
    body: `[${call('echo')},${call('audit_report')}]`,
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a message without jsonrpc',
    body: '{"id":5,"method":"tools/call","params":{"name":"audit_report"}}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'jsonrpc other than "2.0"',
    body: '{"jsonrpc":"1.0","id":5,"method":"tools/call","params":{"name":"audit_report"}}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a method that is not a string',
    body: '{"jsonrpc":"2.0","id":5,"method":["tools/call"],"params":{"name":"audit_report"}}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a null id (MCP: requests carry a string or integer id)',
    body: '{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"audit_report"}}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'an id that is an object',
    body: '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'params that are an array',
    body: '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":["audit_report"]}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a tools/call sent as a notification (no id)',
    body: '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"audit_report"}}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a response with both result and error',
    body: '{"jsonrpc":"2.0","id":5,"result":{},"error":{"code":1,"message":"x"}}',
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'nesting 5,000 levels deep',
    body: call('echo', { params: { name: 'echo', arguments: { text: 'x' } }, deep: '@' }).replace(
      '"@"',
      nested,
    ),
    status: 400,
    code: INVALID_REQUEST,
  },
  {
    name: 'a tools/call without params',
    body: '{"jsonrpc":"2.0","id":5,"method":"tools/call"}',
    status: 400,
    code: INVALID_PARAMS,
  },
  {
    name: 'a tools/call whose name is not a string',
    body: call(['audit_report']),
    status: 400,
    code: INVALID_PARAMS,
  },
  { name: 'a tools/call whose name is empty', body: call(''), status: 400, code: INVALID_PARAMS },
  {
    name: 'a tools/call whose name holds a control character',
    body: call('audit_report\u0000'),
    status: 400,
    code: INVALID_PARAMS,
  },
  {
    name: 'a tools/call whose arguments are an array',
    body: call('echo', { params: { name: 'echo', arguments: ['x'] } }),
    status: 400,
    code: INVALID_PARAMS,
  },
  {
    name: 'Content-Type text/plain',
    body: validCall,
    contentType: 'text/plain',
    status: 415,
    code: -32000,
  },
  { name: 'no Content-Type', body: validCall, contentType: null, status: 415, code: -32000 },
  {
    name: 'application/json with a charset other than UTF-8',
    body: Buffer.from(validCall, 'utf16le'),
    contentType: 'application/json; charset=utf-16le',
    status: 415,
    code: -32000,
  },
  {
    name: 'a form body',
    body: `body=${encodeURIComponent(validCall)}`,
    contentType: 'application/x-www-form-urlencoded',
    status: 415,
    code: -32000,
  },
  {
    name: 'a gzip-compressed body',
    body: gzipSync(call('audit_report')),
    headers: { 'content-encoding': 'gzip' },
    status: 415,
    code: -32000,
  },
]

/** What reached the upstream, by kind: the HTTP server's bodies, or the stdio child's stdin. */
interface Harness {
  readonly upstream: import('../../src/gateway/upstream.js').Upstream
  /** Everything the upstream read so far, one entry per message or request body. */
  received(): string[]
  close(): Promise<void>
}

async function httpHarness(): Promise<Harness> {
  const server = await startHttpUpstream()
  return {
    upstream: httpUpstream({ url: server.url }),
    received: () => server.seen.filter((request) => request.method === 'POST').map((r) => r.body),
    close: () => server.close(),
  }
}

async function stdioHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'deputy-gateway-stdio-'))
  const record = join(dir, 'stdin.log')
  writeFileSync(record, '')
  return {
    upstream: stdioUpstream({
      command: process.execPath,
      args: [UPSTREAM],
      env: { GATEWAY_TEST_RECORD: record },
    }),
    received: () =>
      readFileSync(record, 'utf8')
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('started ')),
    close: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

describe.each([
  ['Streamable HTTP', httpHarness],
  ['stdio', stdioHarness],
] as const)('the gateway fails closed in front of a %s upstream', (_kind, harness) => {
  let issuer: Awaited<ReturnType<typeof startIssuer>>
  let gw: Awaited<ReturnType<typeof startGateway>>
  let upstream: Harness
  let token: string
  let session: string
  let marker = 0

  beforeAll(async () => {
    issuer = await startIssuer()
    upstream = await harness()
    gw = await startGateway({ issuer: issuer.issuer, upstream: upstream.upstream, rules: RULES })
    token = await issuer.token({ aud: gw.resource })
    const opened = await post(JSON.stringify(INITIALIZE), { session: null })
    expect(opened.status).toBe(200)
    session = opened.headers.get('mcp-session-id') as string
    await opened.text()
    const initialized = await post('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    expect(initialized.status).toBe(202)
    // A notification is answered 202 before a stdio child has read it: wait until the upstream
    // has, so it cannot turn up in the first test's record of what was forwarded.
    await receivedSince(0)
  })

  afterAll(async () => {
    await gw?.close()
    await upstream?.close()
    await issuer?.close()
  })

  function post(
    body: string | Uint8Array,
    options: {
      contentType?: string | null
      headers?: Record<string, string>
      session?: string | null
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...options.headers,
    }
    const contentType = options.contentType === undefined ? 'application/json' : options.contentType
    if (contentType !== null) headers['content-type'] = contentType
    const id = options.session === undefined ? session : options.session
    if (id !== null) headers['mcp-session-id'] = id
    return fetch(gw.resource, { method: 'POST', headers, body: body as BodyInit })
  }

  /**
   * What the upstream read since `before`, once a ping sent after it was answered: the upstream
   * reads in order, so anything the gateway passed on earlier is in the record by then.
   */
  async function receivedSince(before: number): Promise<string[]> {
    marker += 1
    const ping = await post(
      JSON.stringify({ jsonrpc: '2.0', id: `marker-${marker}`, method: 'ping' }),
    )
    expect(ping.status).toBe(200)
    expect(await ping.text()).toContain(`marker-${marker}`)
    const since = upstream.received().slice(before)
    expect(since.at(-1)).toContain(`marker-${marker}`)
    return since.slice(0, -1)
  }

  it.each(ODD)('$name is refused with a JSON-RPC error and never forwarded', async (odd) => {
    const before = upstream.received().length
    const events = gw.events.length
    const response = await post(odd.body, {
      ...(odd.contentType !== undefined && { contentType: odd.contentType }),
      ...(odd.headers !== undefined && { headers: odd.headers }),
    })
    expect(response.status).toBe(odd.status)
    expect(response.headers.get('content-type')).toContain('application/json')
    const answer = (await response.json()) as { jsonrpc: string; error: { code: number } }
    expect(answer.jsonrpc).toBe('2.0')
    expect(answer.error.code).toBe(odd.code)
    expect(await receivedSince(before)).toEqual([])
    expect(gw.events.slice(events)).toEqual([])
  })

  it('a valid call is forwarded as the gateway re-serialised it: one name, the one the rules judged', async () => {
    // JSON.parse keeps the last of two equal keys; a parser keeping the first would run audit_report.
    const body =
      '{ "jsonrpc": "2.0", "id": 7, "method": "tools/call",\n  "params": { "name": "audit_report", "name": "echo", "arguments": { "text": "dup" } } }'
    const before = upstream.received().length
    const response = await post(body)
    expect(response.status).toBe(200)
    expect(await response.text()).toContain('echo: dup')
    const [forwarded, ...rest] = await receivedSince(before)
    expect(rest).toEqual([])
    expect(forwarded).not.toContain('audit_report')
    expect(JSON.parse(forwarded as string)).toEqual(JSON.parse(body))
    if (_kind === 'Streamable HTTP') expect(forwarded).toBe(JSON.stringify(JSON.parse(body)))
  })

  it('a UTF-8 byte order mark is read past (RFC 8259 §8.1) and not passed on', async () => {
    const before = upstream.received().length
    const response = await post(concat([0xef, 0xbb, 0xbf], validCall))
    expect(response.status).toBe(200)
    expect(await response.text()).toContain('echo: x')
    const [forwarded] = await receivedSince(before)
    expect(forwarded?.charCodeAt(0)).toBe('{'.charCodeAt(0))
    expect(JSON.parse(forwarded as string)).toEqual(JSON.parse(validCall))
  })

  it('answers methods Streamable HTTP does not define 405 without forwarding them', async () => {
    const before = upstream.received().length
    const response = await fetch(gw.resource, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'mcp-session-id': session,
      },
      body: call('audit_report'),
    })
    expect(response.status).toBe(405)
    expect(response.headers.get('allow')).toBe('GET, POST, DELETE')
    expect(await receivedSince(before)).toEqual([])
  })

  it('still opens the GET stream and ends the session on DELETE', async () => {
    const headers = {
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': '2025-11-25',
    }
    const opened = await post(JSON.stringify(INITIALIZE), { session: null })
    const id = opened.headers.get('mcp-session-id') as string
    await opened.text()
    const stream = await fetch(gw.resource, {
      headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': id },
    })
    expect(stream.status).toBe(200)
    expect(stream.headers.get('content-type')).toContain('text/event-stream')
    await stream.body?.cancel()
    const ended = await fetch(gw.resource, {
      method: 'DELETE',
      headers: { ...headers, 'mcp-session-id': id },
    })
    expect(ended.status).toBe(200)
    const after = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), {
      session: id,
    })
    expect(after.status).toBe(404)
  })
})
