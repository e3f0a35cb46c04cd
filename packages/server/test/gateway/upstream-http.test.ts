import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'

// The gateway's HTTP upstream (node:http, kept-alive connections) keeps what it did with fetch:
// hop-by-hop and credential headers stay behind, compressed answers are decoded, an event stream
// goes on as it comes and no faster than it is read, redirects are answered rather than followed,
// and an upstream that cannot be reached or does not answer in time is a 502.

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void
let handler: Handler = (_req, res) => res.end()
const received: Array<{
  method?: string
  headers: IncomingMessage['headers']
  body: string
  port?: number
}> = []
let server: Server
let url: string

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d) => {
      body += d
    })
    req.on('end', () => {
      received.push({ method: req.method, headers: req.headers, body, port: req.socket.remotePort })
      handler(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})
beforeEach(() => {
  received.length = 0
})

const errors: Error[] = []
const upstream = (extra: Partial<Parameters<typeof httpUpstream>[0]> = {}) =>
  httpUpstream({ url, onError: (error) => errors.push(error), ...extra })
const caller = { sub: 'alice' }
const post = (headers: Record<string, string> = {}, signal?: AbortSignal) =>
  new Request('http://gateway.example/mcp', {
    method: 'POST',
    headers: { accept: 'application/json, text/event-stream', ...headers },
    ...(signal !== undefined && { signal }),
  })
const CALL = { jsonrpc: '2.0' as const, id: 1, method: 'tools/call', params: { name: 'echo' } }

describe('headers', () => {
  it('sends end-to-end headers and the parsed body, never hop-by-hop fields or credentials', async () => {
    handler = (_req, res) => res.end('{}')
    const up = upstream()
    const response = await up.handle(
      post({
        authorization: 'Bearer secret',
        dpop: 'proof',
        'proxy-authorization': 'Basic x',
        connection: 'x-hop',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        trailer: 'x-later',
        upgrade: 'websocket',
        'content-type': 'text/plain',
        'content-encoding': 'gzip',
        'mcp-session-id': 'session-1',
        'mcp-protocol-version': '2025-11-25',
        'last-event-id': '7',
        'x-custom': 'kept',
      }),
      CALL,
      caller,
    )
    await response.text()
    await up.close()
    const [seen] = received
    expect(JSON.parse(seen?.body ?? '')).toEqual(CALL)
    expect(seen?.headers).toMatchObject({
      host: new URL(url).host,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(JSON.stringify(CALL))),
      'accept-encoding': 'gzip, deflate',
      'mcp-session-id': 'session-1',
      'mcp-protocol-version': '2025-11-25',
      'last-event-id': '7',
      'x-custom': 'kept',
    })
    for (const name of [
      'authorization',
      'dpop',
      'proxy-authorization',
      'te',
      'trailer',
      'upgrade',
      'content-encoding',
    ])
      expect(seen?.headers[name]).toBeUndefined()
    expect(seen?.headers.connection).toBe('keep-alive')
  })

  it('answers with the upstream status and end-to-end headers, without hop-by-hop ones', async () => {
    handler = (_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.setHeader('mcp-session-id', 'session-2')
      res.setHeader('keep-alive', 'timeout=5')
      res.setHeader('content-type', 'application/json')
      res.writeHead(202, 'Taken')
      res.end('{"ok":true}')
    }
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.status).toBe(202)
    expect(response.statusText).toBe('Taken')
    expect(response.headers.get('mcp-session-id')).toBe('session-2')
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
    for (const name of ['keep-alive', 'content-length', 'connection', 'transfer-encoding'])
      expect(response.headers.has(name)).toBe(false)
    expect(await response.json()).toEqual({ ok: true })
  })

  it('keeps the connection alive between calls', async () => {
    handler = (_req, res) => res.end('{}')
    const up = upstream()
    for (let i = 0; i < 3; i++) await (await up.handle(post(), CALL, caller)).text()
    await up.close()
    expect(new Set(received.map((r) => r.port)).size).toBe(1)
  })

  it('passes a GET and a DELETE on without a body', async () => {
    handler = (_req, res) => res.writeHead(405).end()
    const up = upstream()
    for (const method of ['GET', 'DELETE']) {
      const response = await up.handle(
        new Request('http://gateway.example/mcp', { method, headers: { 'mcp-session-id': 's' } }),
        undefined,
        caller,
      )
      expect(response.status).toBe(405)
    }
    await up.close()
    expect(received.map((r) => [r.method, r.body, r.headers['content-type']])).toEqual([
      ['GET', '', undefined],
      ['DELETE', '', undefined],
    ])
  })
})

describe('bodies', () => {
  const text = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: ['é'.repeat(5000)] } })
  it.each([
    ['gzip', gzipSync(text)],
    ['x-gzip', gzipSync(text)],
    ['deflate', deflateSync(text)],
    ['deflate', deflateRawSync(text)],
    ['br', brotliCompressSync(text)],
    ['gzip, br', brotliCompressSync(gzipSync(text))],
  ])('decodes a %s answer, as fetch does', async (coding, bytes) => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding })
      res.end(bytes)
    }
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.headers.has('content-encoding')).toBe(false)
    expect(await response.text()).toBe(text)
  })

  it('passes on the bytes of a coding it does not know, and of an identity answer', async () => {
    const bytes = Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d, 0xff])
    for (const coding of ['zz-unknown', 'identity']) {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding })
        res.end(bytes)
      }
      const up = upstream()
      const response = await up.handle(post(), CALL, caller)
      await up.close()
      expect(Buffer.from(await response.arrayBuffer())).toEqual(bytes)
    }
  })

  it('streams an event stream as it comes, decoded', async () => {
    let finish: () => void = () => {}
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n')
      finish = () => res.end('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
    }
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    // The first event arrives while the upstream still holds the stream open.
    const first = await reader.read()
    expect(decoder.decode(first.value)).toContain('notifications/progress')
    finish()
    let rest = ''
    for (let next = await reader.read(); !next.done; next = await reader.read())
      rest += decoder.decode(next.value)
    expect(rest).toContain('"result"')
    await up.close()
  })

  it('reads an event stream no faster than its reader: the upstream feels the backpressure', async () => {
    let written = 0
    let held = false
    const chunk = `data: ${'x'.repeat(64 * 1024)}\n\n`
    const stalled = new Promise<void>((resolve) => {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const more = () => {
          while (written < 256 * 1024 * 1024) {
            written += chunk.length
            if (!res.write(chunk)) {
              held = true
              resolve()
              return
            }
          }
          res.end()
          resolve()
        }
        more()
      }
    })
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    await stalled
    // Nothing reads the stream: the upstream's writes stop well before everything it had.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(held).toBe(true)
    expect(written).toBeLessThan(64 * 1024 * 1024)
    await response.body?.cancel()
    await up.close()
  })

  it('ends the stream of an upstream that goes silent for longer than the body wait', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: {}\n\n')
    }
    const up = upstream({ bodyTimeoutMs: 200 })
    const response = await up.handle(post(), CALL, caller)
    await expect(response.text()).rejects.toThrow()
    await up.close()
  })
})

describe('what it does not do', () => {
  it('answers a redirect with the redirect, following nothing', async () => {
    handler = (_req, res) => res.writeHead(307, { location: 'http://127.0.0.1:9/elsewhere' }).end()
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.status).toBe(307)
    expect(response.headers.get('location')).toBe('http://127.0.0.1:9/elsewhere')
    expect(received).toHaveLength(1)
  })

  it('answers 502 when the upstream cannot be reached', async () => {
    errors.length = 0
    const up = httpUpstream({
      url: 'http://127.0.0.1:9/mcp',
      onError: (error) => errors.push(error),
    })
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.status).toBe(502)
    expect(await response.json()).toMatchObject({ error: { code: -32603 } })
    expect(errors[0]?.message).toMatch(/unreachable/)
  })

  it('answers 502 when no headers come within the wait', async () => {
    errors.length = 0
    handler = () => {}
    const up = upstream({ headersTimeoutMs: 200 })
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.status).toBe(502)
    expect(errors[0]?.message).toMatch(/no response headers/)
  })

  it('answers 502, and does not send the POST again, when the upstream drops the connection', async () => {
    handler = (req) => req.socket.destroy()
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.status).toBe(502)
    expect(received).toHaveLength(1)
  })

  it('answers 502 when the upstream breaks off a JSON answer', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('{"jsonrpc"')
      setTimeout(() => res.socket?.destroy(), 20)
    }
    const up = upstream()
    const response = await up.handle(post(), CALL, caller)
    await up.close()
    expect(response.status).toBe(502)
  })

  it('answers 502 for a JSON answer that decodes to more than the bound, compressed or not', async () => {
    // 8 MiB of zeros gzip to about 8 KiB: the bound is on what the answer decodes to.
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024))
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
      res.end(bomb)
    }
    const up = upstream({ maxAnswerBytes: 1024 * 1024 })
    const response = await up.handle(post(), CALL, caller)
    expect(response.status).toBe(502)
    expect(errors.at(-1)?.message).toMatch(/larger than 1048576 bytes/)
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(`"${'x'.repeat(2 * 1024 * 1024)}"`)
    }
    expect((await up.handle(post(), CALL, caller)).status).toBe(502)
    // Within the bound, the same upstream answers as ever.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}')
    }
    expect(await (await up.handle(post(), CALL, caller)).json()).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: {},
    })
    await up.close()
  })

  it('cancels the upstream request when the client goes away (499)', async () => {
    let closed: () => void = () => {}
    const gone = new Promise<void>((resolve) => {
      closed = resolve
    })
    handler = (_req, res) => res.once('close', closed)
    const client = new AbortController()
    const up = upstream()
    const pending = up.handle(post({}, client.signal), CALL, caller)
    await new Promise((resolve) => setTimeout(resolve, 50))
    client.abort()
    expect((await pending).status).toBe(499)
    await gone
    await up.close()
  })
})
