import {
  DEFAULT_MAX_REQUEST_BODY_SIZE,
  isJsonContentType,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server'
import { Hono } from 'hono'
import { readBodyWithin } from './request-parts.js'

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
      const body = await readBodyWithin(c.req.raw, maxBytes)
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
