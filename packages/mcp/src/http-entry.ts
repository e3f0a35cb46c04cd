import {
  DEFAULT_MAX_REQUEST_BODY_SIZE,
  isJsonContentType,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server'
import { Hono } from 'hono'

// The MCP endpoint's HTTP entry: the checks the SDK's Hono adapter (@modelcontextprotocol/hono,
// createMcpHonoApp) makes, in its order and with its answers — Host (403), Origin (403), a JSON
// body over the limit (413), a JSON body that does not parse (400 "Invalid JSON") — with the SDK's
// own validators. What differs is how the body is read: the adapter reads a clone() of the
// request, which tees its body stream so the SDK could read it again; the kit hands the SDK the
// parsed value instead, so the body is read once (the clone was about a fifth of a call's CPU).

/** What {@link mcpEntryApp} checks, as createMcpHonoApp's options. */
export interface McpEntryOptions {
  /** The hostname the server answers at; a localhost name turns on the localhost checks. */
  readonly host: string
  readonly allowedHosts?: readonly string[]
  readonly allowedOrigins?: readonly string[]
  readonly maxRequestBodySize?: number
}

const LOCAL_HOSTS = ['127.0.0.1', 'localhost', '::1']
const decoder = new TextDecoder()

/** A JSON-RPC error with no id, as the adapter answers its refusals. */
const refusal = (message: string) => ({
  jsonrpc: '2.0',
  error: { code: -32000, message },
  id: null,
})

/**
 * The request's body, read once and at most `maxBytes` of it (the adapter's bound: a declared
 * length over it is refused unread, a stream stops as soon as it is over).
 */
async function readBody(request: Request, maxBytes: number): Promise<Uint8Array | 'too_large'> {
  const length = request.headers.get('content-length')
  const declared = Number(length)
  if (declared > maxBytes) return 'too_large'
  // With a declared length within the bound, HTTP/1.1 framing bounds what arrives: read it in one
  // piece (@hono/node-server then reads straight from the socket, no web stream). A Request built
  // in-process could carry more than it declares, so the size is checked again.
  if (length !== null && Number.isSafeInteger(declared) && declared >= 0) {
    const whole = new Uint8Array(await request.arrayBuffer())
    return whole.byteLength > maxBytes ? 'too_large' : whole
  }
  if (request.body === null) return new Uint8Array()
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = request.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) return 'too_large'
      chunks.push(value)
    }
  } finally {
    reader.releaseLock()
  }
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks)
}

/**
 * A Hono app to mount at the MCP endpoint's path, in place of createMcpHonoApp: its checks on
 * every request under that path, then `handle` at the path itself with the parsed JSON body
 * (undefined when the request has no JSON content type). The body stream is then used up.
 */
export function mcpEntryApp(
  options: McpEntryOptions,
  handle: (request: Request, parsedBody: unknown) => Promise<Response>,
): Hono<{ Variables: { parsedBody: unknown } }> {
  const maxBytes = options.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE
  if (typeof maxBytes !== 'number' || !Number.isFinite(maxBytes) || maxBytes <= 0)
    throw new RangeError(
      `maxRequestBodySize must be a positive number of bytes, got ${String(maxBytes)}`,
    )
  const local = LOCAL_HOSTS.includes(options.host)
  const hosts = options.allowedHosts ?? (local ? localhostAllowedHostnames() : undefined)
  const origins = options.allowedOrigins ?? (local ? localhostAllowedOrigins() : undefined)
  if (hosts === undefined && (options.host === '0.0.0.0' || options.host === '::'))
    console.warn(
      `Warning: Server is binding to ${options.host} without DNS rebinding protection. Consider using the allowedHosts option to restrict allowed hosts, or use authentication to protect your server.`,
    )
  const app = new Hono<{ Variables: { parsedBody: unknown } }>()
  app.use('*', async (c, next) => {
    if (hosts !== undefined) {
      const host = validateHostHeader(c.req.header('host'), [...hosts])
      if (!host.ok) return c.json(refusal(host.message), 403)
    }
    if (origins !== undefined) {
      const origin = validateOriginHeader(c.req.header('origin'), [...origins])
      if (!origin.ok) return c.json(refusal(origin.message), 403)
    }
    if (!isJsonContentType(c.req.header('content-type'))) return next()
    try {
      const body = await readBody(c.req.raw, maxBytes)
      if (body === 'too_large')
        return c.json(
          refusal(`Payload Too Large: Request body must not exceed ${maxBytes} bytes`),
          413,
        )
      c.set('parsedBody', JSON.parse(decoder.decode(body)))
    } catch {
      return c.text('Invalid JSON', 400)
    }
    return next()
  })
  app.all('/', (c) => handle(c.req.raw, c.get('parsedBody')))
  return app
}
