import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit as honoBodyLimit } from 'hono/body-limit'

/**
 * Refuses request bodies larger than `maxSize` before they are read, as hono's `bodyLimit` does,
 * without touching the body when the headers already settle it. hono's middleware reads
 * `c.req.raw.body` first, which makes @hono/node-server build a full web `Request` and stream for
 * every request (GETs included) — about an eighth of the token endpoint's CPU. A GET or HEAD body
 * is never read by Deputy, and a `Content-Length` without `Transfer-Encoding` bounds the body
 * (Node's HTTP parser stops there), so only a chunked body goes through the counting reader.
 */
export function bodyLimit(options: {
  maxSize: number
  onError: (c: Context) => Response | Promise<Response>
}): MiddlewareHandler {
  const counting = honoBodyLimit(options)
  return async function bodyLimit(c, next) {
    const method = c.req.method
    if (method === 'GET' || method === 'HEAD') return next()
    const length = c.req.header('content-length')
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number.parseInt(length, 10) > options.maxSize ? options.onError(c) : next()
    }
    return counting(c, next)
  }
}
