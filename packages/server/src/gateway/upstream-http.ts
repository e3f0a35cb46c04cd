import {
  type Agent,
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream'
import { urlToHttpOptions } from 'node:url'
import * as zlib from 'node:zlib'
import { answerRead, INTERNAL_ERROR, rpcErrorResponse, type Upstream } from './upstream.js'

/** Options of {@link httpUpstream}. */
export interface HttpUpstreamOptions {
  /** The upstream's Streamable HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`. */
  url: string
  onError?: (error: Error) => void
  /** How long to wait for the upstream's response headers; 300 s (fetch's, undici's default). */
  headersTimeoutMs?: number
  /** How long a response body may send nothing; 300 s (fetch's, undici's default). */
  bodyTimeoutMs?: number
  /**
   * The most bytes a JSON answer, read whole, may decode to; 64 MiB. Larger is a 502: a small
   * compressed answer can decode to gigabytes, and the gateway must not hold them.
   */
  maxAnswerBytes?: number
}

// The gateway talks to its upstream with node:http over kept-alive connections rather than with
// fetch: fetch's request, response and stream objects cost about 250 µs of CPU per call more
// (355 -> 105 µs measured for the client side of a tools/call). It keeps what fetch did: no
// redirect is followed (a redirect is the upstream's answer to the client), compressed answers are
// decoded as fetch decodes them, the 300 s waits for headers and between body bytes, and an event
// stream goes on event by event with backpressure. A POST is never sent twice: a kept-alive
// connection the upstream closes just as a call goes out answers 502, as a call is not idempotent.
const DEFAULT_TIMEOUT_MS = 300_000
const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024

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

// Compressed bodies are decoded, so the encoding and length of what was read no longer describe
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

/** Fetch §2.2.3: statuses whose responses have no body. */
const NULL_BODY = new Set([101, 204, 205, 304])

// Fetch decodes with flushes at every chunk, so an event stream's events come out as they arrive.
const ZLIB = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }
const BROTLI = {
  flush: zlib.constants.BROTLI_OPERATION_FLUSH,
  finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
}

/**
 * `deflate` as fetch reads it: the zlib format RFC 9110 §8.4.1.2 names, or the raw deflate some
 * servers send, told apart by the first byte.
 */
class Inflate extends Transform {
  #inner: zlib.Inflate | zlib.InflateRaw | undefined
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    if (this.#inner === undefined) {
      if (chunk.length === 0) return done()
      this.#inner =
        ((chunk[0] as number) & 0x0f) === 0x08
          ? zlib.createInflate(ZLIB)
          : zlib.createInflateRaw(ZLIB)
      this.#inner.on('data', (data: Buffer) => this.push(data))
      this.#inner.on('error', (error) => this.destroy(error))
    }
    this.#inner.write(chunk, () => done())
  }
  override _flush(done: TransformCallback) {
    if (this.#inner === undefined) return done()
    this.#inner.once('end', () => done())
    this.#inner.end()
  }
}

/**
 * The decoders of a `Content-Encoding`, outermost coding last (RFC 9110 §8.4), as fetch has them:
 * none when a coding is one it does not know (the bytes then go on as they came).
 */
function decodersFor(contentEncoding: string | undefined): Array<() => Transform> {
  if (contentEncoding === undefined || contentEncoding === '') return []
  const codings = contentEncoding.toLowerCase().split(',')
  const decoders: Array<() => Transform> = []
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = (codings[i] as string).trim()
    if (coding === 'gzip' || coding === 'x-gzip') decoders.push(() => zlib.createGunzip(ZLIB))
    else if (coding === 'deflate') decoders.push(() => new Inflate())
    else if (coding === 'br') decoders.push(() => zlib.createBrotliDecompress(BROTLI))
    else return []
  }
  return decoders
}

function outgoingHeaders(
  from: Headers,
  body: string | undefined,
  secure: boolean,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {}
  from.forEach((value, name) => {
    if (!REQUEST_DROPPED.has(name)) headers[name] = value
  })
  // What fetch asks for when the client did not say (Fetch §4.6 "HTTP-network-or-cache fetch").
  if (headers['accept-encoding'] === undefined)
    headers['accept-encoding'] = secure ? 'br, gzip, deflate' : 'gzip, deflate'
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = Buffer.byteLength(body)
  }
  return headers
}

function incomingHeaders(res: IncomingMessage): Headers {
  const headers = new Headers()
  const raw = res.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (!RESPONSE_DROPPED.has(name.toLowerCase())) headers.append(name, raw[i + 1] as string)
  }
  return headers
}

/** Every chunk of a (decoded) body, in one buffer; refused beyond `limit` bytes. */
function readWhole(source: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    source.on('data', (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > limit) {
        source.destroy(new Error(`the upstream's JSON answer is larger than ${limit} bytes`))
        return
      }
      chunks.push(chunk)
    })
    source.once('end', () =>
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)),
    )
    source.on('error', reject)
    source.once('close', () => {
      if (!source.readableEnded) reject(new Error('the upstream closed the response early'))
    })
  })
}

/**
 * A (decoded) body as a web stream that reads no further ahead than its reader: the source is
 * paused while a chunk waits to be read, so a slow client slows the upstream, not memory.
 */
function streamOf(
  source: Readable,
  ended: () => boolean,
  stop: (reason?: unknown) => void,
): ReadableStream<Uint8Array> {
  let open = true
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const finish = (error?: Error) => {
        if (!open) return
        open = false
        // The gateway closing (or the client leaving) ends the stream; nothing went wrong.
        const quiet = error === undefined || ended()
        stop()
        if (quiet) controller.close()
        else controller.error(error)
      }
      source.on('data', (chunk: Buffer) => {
        if (!open) return
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        if ((controller.desiredSize ?? 0) <= 0) source.pause()
      })
      source.once('end', () => finish())
      source.on('error', (error) => finish(error))
      source.once('close', () => {
        if (!source.readableEnded) finish(new Error('the upstream closed the response early'))
      })
    },
    pull() {
      source.resume()
    },
    cancel(reason) {
      open = false
      stop(reason ?? 'cancelled')
    },
  })
}

/**
 * An MCP server reached over Streamable HTTP. Requests go on with their method, `Mcp-Session-Id`,
 * `MCP-Protocol-Version`, `Last-Event-ID`, `Accept` and every other end-to-end header, without the
 * client's token, and a POST with the JSON the gateway parsed, serialised again; responses come
 * back as they are: a JSON answer read whole, an event stream streamed event by event. A client
 * that goes away cancels the upstream request.
 */
export function httpUpstream(options: HttpUpstreamOptions): Upstream {
  const url = new URL(options.url)
  const secure = url.protocol === 'https:'
  const send = secure ? httpsRequest : httpRequest
  // Where every request goes, taken from the URL once rather than for every request.
  const target = urlToHttpOptions(url)
  const agent: Agent = secure
    ? new HttpsAgent({ keepAlive: true })
    : new HttpAgent({ keepAlive: true })
  const onError = options.onError ?? (() => {})
  const headersTimeoutMs = options.headersTimeoutMs ?? DEFAULT_TIMEOUT_MS
  const bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES
  const unreachable = (error: Error) => {
    onError(new Error(`upstream ${url.href} unreachable: ${error.message}`))
    return rpcErrorResponse(502, INTERNAL_ERROR, 'The upstream MCP server could not be reached')
  }
  /** Requests under way, each with how to end it when the gateway closes. */
  const inflight = new Set<() => void>()

  return {
    handle(request, body) {
      if (request.signal.aborted) return Promise.resolve(new Response(null, { status: 499 }))
      // A string, not a Buffer: node:http then sends it in one write with the request head.
      const payload = body === undefined ? undefined : JSON.stringify(body)
      return new Promise<Response>((resolve) => {
        let aborted = false
        let answered = false
        let req: ClientRequest
        const abort = () => {
          aborted = true
          req.destroy()
        }
        const release = () => {
          clearTimeout(timer)
          inflight.delete(abort)
          request.signal.removeEventListener('abort', abort)
        }
        const fail = (error: Error) => {
          release()
          if (answered) return
          answered = true
          resolve(aborted ? new Response(null, { status: 499 }) : unreachable(error))
        }
        const timer = setTimeout(
          () => req.destroy(new Error(`no response headers within ${headersTimeoutMs} ms`)),
          headersTimeoutMs,
        )
        try {
          req = send({
            ...target,
            method: request.method,
            headers: outgoingHeaders(request.headers, payload, secure),
            agent,
          })
        } catch (error) {
          clearTimeout(timer)
          resolve(unreachable(error as Error))
          return
        }
        inflight.add(abort)
        request.signal.addEventListener('abort', abort, { once: true })
        req.on('error', fail)
        req.once('response', (res) => {
          // From here, the wait is between body bytes.
          clearTimeout(timer)
          const idle = setTimeout(
            () => res.destroy(new Error(`no response data for ${bodyTimeoutMs} ms`)),
            bodyTimeoutMs,
          )
          res.on('data', () => idle.refresh())
          res.once('close', () => clearTimeout(idle))
          const status = res.statusCode ?? 502
          const init = {
            status,
            statusText: res.statusMessage ?? '',
            headers: incomingHeaders(res),
          }
          if (NULL_BODY.has(status) || request.method === 'HEAD') {
            res.on('error', release)
            res.once('end', release)
            res.resume()
            answered = true
            resolve(new Response(null, init))
            return
          }
          const decoders = decodersFor(res.headers['content-encoding'])
          const source: Readable =
            decoders.length === 0
              ? res
              : (pipeline(
                  [res, ...decoders.map((make) => make())],
                  () => {},
                ) as unknown as Readable)
          const type = res.headers['content-type'] ?? ''
          if (type.includes('json') && !type.includes('text/event-stream')) {
            // A JSON answer is one message (or a batch): read whole, so the gateway reads it
            // without a stream; the bytes go on as they came (decoded).
            readWhole(source, maxAnswerBytes).then(
              (bytes) => {
                release()
                answered = true
                resolve(answerRead({ ...init, bytes }))
              },
              (error: Error) => fail(error),
            )
            return
          }
          answered = true
          resolve(
            new Response(
              streamOf(
                source,
                () => aborted,
                (reason) => {
                  release()
                  if (reason !== undefined || !source.readableEnded) {
                    aborted = true
                    res.destroy()
                  }
                },
              ),
              init,
            ),
          )
        })
        req.end(payload)
      })
    },
    async close() {
      for (const abort of inflight) abort()
      inflight.clear()
      agent.destroy()
    },
  }
}
