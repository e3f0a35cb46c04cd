import { isResponseTo, type RpcMessage } from './messages.js'
import { INTERNAL_ERROR } from './upstream.js'

// MCP Streamable HTTP, "Sending Messages to the Server": the server may answer a POST holding a
// request with a `text/event-stream` carrying notifications related to it, then the response. The
// gateway does so for a call waiting for the person's approval, so the client hears that it waits.

/** True when the client's `Accept` takes `text/event-stream` (RFC 9110 §12.5.1: q=0 refuses). */
export function acceptsEventStream(headers: Headers): boolean {
  return (headers.get('accept') ?? '').split(',').some((range) => {
    const [type = '', ...parameters] = range.split(';')
    if (type.trim().toLowerCase() !== 'text/event-stream') return false
    const q = parameters
      .map((parameter) => parameter.trim().toLowerCase())
      .find((parameter) => parameter.startsWith('q='))
    return q === undefined || Number(q.slice(2)) > 0
  })
}

/** A message the gateway writes itself. */
type Outgoing = RpcMessage & { readonly jsonrpc?: '2.0' }

/** The stream a call's answer is written to. */
export interface EventStreamWriter {
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal
  /** One JSON-RPC message as one event; nothing once the client has gone. */
  send(message: Outgoing): void
  /**
   * Passes a response on as events: an event stream byte for byte, in order; a JSON body message
   * by message. Without an answer to the call in a JSON body (a body that is not JSON-RPC, an
   * empty one), the call gets a JSON-RPC error rather than a stream that ends without its answer.
   */
  relay(response: Response, rewrite?: MessageRewrite): Promise<void>
}

/** Changes a message the gateway passes on (returns it unchanged when it is not concerned). */
export type MessageRewrite = (message: RpcMessage) => RpcMessage

/**
 * MCP progress: "The progress value MUST increase with each notification." A call that waited for
 * approval has already heard `offset` notifications under its token from the gateway; the
 * upstream's own count, which starts again from its beginning, is shifted to follow on from them.
 */
export function progressFollowing(token: string | number, offset: number): MessageRewrite {
  return (message) => {
    const params = (message as { method?: unknown; params?: Record<string, unknown> }).params
    if (
      offset === 0 ||
      (message as { method?: unknown }).method !== 'notifications/progress' ||
      params?.progressToken !== token ||
      typeof params.progress !== 'number'
    ) {
      return message
    }
    return {
      ...message,
      params: {
        ...params,
        progress: params.progress + offset,
        ...(typeof params.total === 'number' && { total: params.total + offset }),
      },
    } as RpcMessage
  }
}

const encoder = new TextEncoder()

/**
 * Answers the request `id` with an event stream that `write` fills: opened at once, closed when
 * `write` has settled. A failure of `write` goes to `onError` and answers the call with an error.
 */
export function eventStreamAnswer(
  clientSignal: AbortSignal,
  id: unknown,
  write: (writer: EventStreamWriter) => Promise<void>,
  onError: (error: Error) => void,
): Response {
  const gone = new AbortController()
  const leave = () => gone.abort()
  clientSignal.addEventListener('abort', leave, { once: true })
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c
    },
    cancel: leave,
  })
  const enqueue = (bytes: Uint8Array) => {
    if (gone.signal.aborted) return
    try {
      controller.enqueue(bytes)
    } catch {
      // Closed meanwhile: the client has gone.
      gone.abort()
    }
  }
  const send = (message: Outgoing) =>
    enqueue(encoder.encode(`event: message\ndata: ${JSON.stringify(message)}\n\n`))
  const failed = (message: string): Outgoing => ({
    jsonrpc: '2.0',
    id,
    error: { code: INTERNAL_ERROR, message },
  })

  async function relay(response: Response, rewrite?: MessageRewrite): Promise<void> {
    const type = response.headers.get('content-type') ?? ''
    if (type.includes('text/event-stream') && response.body !== null) {
      const reader = response.body.getReader()
      const stop = () => void reader.cancel().catch(() => {})
      gone.signal.addEventListener('abort', stop, { once: true })
      const events = rewrite === undefined ? undefined : new EventRewriter(rewrite)
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) {
            if (events) enqueue(encoder.encode(events.end()))
            return
          }
          enqueue(events ? encoder.encode(events.push(value)) : value)
        }
      } finally {
        gone.signal.removeEventListener('abort', stop)
      }
    }
    const text = await response.text()
    let messages: unknown[] = []
    try {
      const parsed: unknown = JSON.parse(text)
      messages = Array.isArray(parsed) ? parsed : [parsed]
    } catch {
      // Not JSON: answered below.
    }
    let answered = false
    for (const message of messages) {
      if (message === null || typeof message !== 'object') continue
      if (isResponseTo(message as RpcMessage, id)) answered = true
      send(rewrite ? rewrite(message as RpcMessage) : (message as RpcMessage))
    }
    if (!answered) {
      send(failed(`The MCP server answered HTTP ${response.status} without an answer to the call`))
    }
  }

  void (async () => {
    try {
      await write({ signal: gone.signal, send, relay })
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)))
      send(failed('The call could not be completed'))
    } finally {
      clientSignal.removeEventListener('abort', leave)
      if (!gone.signal.aborted) {
        try {
          controller.close()
        } catch {
          // Cancelled meanwhile.
        }
      }
    }
  })()
  return new Response(stream, {
    status: 200,
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  })
}

/**
 * Passes a Server-Sent Events stream on event by event (WHATWG HTML §9.2, "Parsing an event
 * stream": events end at a blank line), rewriting the JSON-RPC message of an event's data where
 * `rewrite` changes it; every other event, and every other field (`id`, `event`, `retry`), goes
 * on exactly as it came.
 */
class EventRewriter {
  private readonly decoder = new TextDecoder()
  private pending = ''
  private readonly rewrite: MessageRewrite
  constructor(rewrite: MessageRewrite) {
    this.rewrite = rewrite
  }

  push(chunk: Uint8Array): string {
    this.pending += this.decoder.decode(chunk, { stream: true })
    let out = ''
    for (;;) {
      const end = /\r\n\r\n|\n\n|\r\r/.exec(this.pending)
      if (end === null) return out
      const block = this.pending.slice(0, end.index)
      out += this.event(block) + end[0]
      this.pending = this.pending.slice(end.index + end[0].length)
    }
  }

  /** What is left when the stream ends (an event without its blank line is passed on as it is). */
  end(): string {
    const rest = this.pending + this.decoder.decode()
    this.pending = ''
    return rest
  }

  private event(block: string): string {
    const lines = block.split(/\r\n|\n|\r/)
    const data = lines
      .filter((line) => line === 'data' || line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
    if (data.length === 0) return block
    let message: RpcMessage
    try {
      message = JSON.parse(data.join('\n')) as RpcMessage
    } catch {
      return block
    }
    const rewritten = this.rewrite(message)
    if (rewritten === message) return block
    const kept = lines.filter((line) => !(line === 'data' || line.startsWith('data:')))
    return [...kept, `data: ${JSON.stringify(rewritten)}`].join('\n')
  }
}
