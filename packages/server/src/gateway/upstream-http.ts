import { INTERNAL_ERROR, rpcErrorResponse, type Upstream } from './upstream.js'

/** Options of {@link httpUpstream}. */
export interface HttpUpstreamOptions {
  /** The upstream's Streamable HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`. */
  url: string
  fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
  onError?: (error: Error) => void
}

// RFC 9110 §7.6.1: connection-specific fields belong to one hop; `host` names the gateway, not the
// upstream. `authorization` never leaves the gateway: the client's token was issued for the
// gateway, and MCP authorization ("Access Token Privilege Restriction") forbids passing it on.
// The body is the gateway's own serialisation, so the fields describing the client's bytes
// (`content-*`) are the gateway's to set.
const REQUEST_DROPPED = new Set([
  'authorization',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'dpop',
  'host',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

// fetch decodes compressed bodies, so the encoding and length of what it read no longer describe
// what the gateway sends on.
const RESPONSE_DROPPED = new Set([
  'connection',
  'content-encoding',
  'content-length',
  'keep-alive',
  'proxy-connection',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

function copyHeaders(from: Headers, dropped: ReadonlySet<string>): Headers {
  const headers = new Headers()
  from.forEach((value, name) => {
    if (!dropped.has(name.toLowerCase())) headers.append(name, value)
  })
  return headers
}

/**
 * An MCP server reached over Streamable HTTP. Requests go on with their method, `Mcp-Session-Id`,
 * `MCP-Protocol-Version`, `Last-Event-ID`, `Accept` and every other end-to-end header, without the
 * client's token, and a POST with the JSON the gateway parsed, serialised again; responses come
 * back as they are, JSON or SSE streamed event by event. A client that goes away cancels the
 * upstream request.
 */
export function httpUpstream(options: HttpUpstreamOptions): Upstream {
  const url = new URL(options.url)
  const fetchImpl = options.fetch ?? globalThis.fetch
  const onError = options.onError ?? (() => {})
  const inflight = new Set<AbortController>()
  return {
    async handle(request, body) {
      const controller = new AbortController()
      const abort = () => controller.abort(request.signal.reason)
      if (request.signal.aborted) abort()
      else request.signal.addEventListener('abort', abort, { once: true })
      inflight.add(controller)
      const headers = copyHeaders(request.headers, REQUEST_DROPPED)
      if (body !== undefined) headers.set('content-type', 'application/json')
      let response: Response
      try {
        response = await fetchImpl(url, {
          method: request.method,
          headers,
          ...(body !== undefined && { body: JSON.stringify(body) }),
          // A redirect is the upstream's answer to the client, not something to follow here.
          redirect: 'manual',
          signal: controller.signal,
        })
      } catch (error) {
        inflight.delete(controller)
        request.signal.removeEventListener('abort', abort)
        if (controller.signal.aborted) return new Response(null, { status: 499 })
        onError(new Error(`upstream ${url.href} unreachable: ${(error as Error).message}`))
        return rpcErrorResponse(502, INTERNAL_ERROR, 'The upstream MCP server could not be reached')
      }
      const release = () => {
        inflight.delete(controller)
        request.signal.removeEventListener('abort', abort)
      }
      const upstreamBody = response.body
      if (upstreamBody === null) release()
      const reader = upstreamBody?.getReader()
      const stream =
        reader === undefined
          ? null
          : new ReadableStream<Uint8Array>({
              async pull(out) {
                try {
                  const { done, value } = await reader.read()
                  if (done) {
                    release()
                    out.close()
                  } else out.enqueue(value)
                } catch (error) {
                  release()
                  // The gateway closing (or the client leaving) ends the stream; nothing went wrong.
                  if (controller.signal.aborted) out.close()
                  else out.error(error)
                }
              },
              async cancel(reason) {
                release()
                controller.abort(reason)
                await reader.cancel(reason).catch(() => {})
              },
            })
      return new Response(stream, {
        status: response.status,
        statusText: response.statusText,
        headers: copyHeaders(response.headers, RESPONSE_DROPPED),
      })
    },
    async close() {
      for (const controller of inflight) controller.abort()
      inflight.clear()
    },
  }
}
