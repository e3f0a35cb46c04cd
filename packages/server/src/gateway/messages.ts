/** A JSON-RPC message as the gateway looks at it: only the fields it reads. */
export interface RpcMessage {
  readonly id?: unknown
  readonly method?: unknown
  readonly params?: unknown
  readonly result?: unknown
  readonly error?: unknown
}

/** The messages of a JSON-RPC body: one object, or each object of a (2025-03-26) batch. */
export function rpcMessages(body: unknown): RpcMessage[] {
  const list = Array.isArray(body) ? body : [body]
  return list.filter(
    (message): message is RpcMessage => message !== null && typeof message === 'object',
  )
}

/** The `tools/call` requests of a body with the tool each names. */
export function toolCalls(
  messages: readonly RpcMessage[],
): { id: unknown; name: string; arguments: unknown }[] {
  const calls: { id: unknown; name: string; arguments: unknown }[] = []
  for (const message of messages) {
    if (message.method !== 'tools/call') continue
    const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown }
    // A call naming no tool cannot match a rule; the upstream answers it with its own error.
    calls.push({
      id: message.id,
      name: typeof params.name === 'string' ? params.name : '',
      arguments: params.arguments,
    })
  }
  return calls
}

/** Ids of the `tools/list` requests of a body. */
export function toolListIds(messages: readonly RpcMessage[]): unknown[] {
  return messages
    .filter((message) => message.method === 'tools/list' && message.id !== undefined)
    .map((message) => message.id)
}

/** True for a JSON-RPC response (result or error) to the request `id`. */
export function isResponseTo(message: RpcMessage, id: unknown): boolean {
  return (
    message.id === id && message.method === undefined && ('result' in message || 'error' in message)
  )
}

const encoder = new TextEncoder()

/**
 * Passes a `text/event-stream` body through event by event. `onMessage` sees each event's JSON-RPC
 * message and may return a replacement; an event it leaves alone goes out as the exact bytes that
 * came in (comments, ids, retry fields, keep-alives included). `onEnd` runs once when the stream
 * ends, errors or is cancelled by the reader.
 */
export function observeEventStream(
  body: ReadableStream<Uint8Array>,
  onMessage: (message: RpcMessage) => RpcMessage | undefined,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder()
  let buffer = ''
  let ended = false
  const end = () => {
    if (ended) return
    ended = true
    onEnd()
  }
  // An event ends at a blank line (WHATWG HTML §9.2.6); the SDKs write LF, some servers CRLF.
  const boundary = /\r?\n\r?\n/
  const emit = (controller: TransformStreamDefaultController<Uint8Array>, block: string) => {
    const lines = block.split(/\r?\n/)
    const data = lines
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
    let replaced: string | undefined
    if (data.length > 0) {
      try {
        const parsed: unknown = JSON.parse(data.join('\n'))
        if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
          const replacement = onMessage(parsed as RpcMessage)
          if (replacement !== undefined) {
            const kept = lines.filter((line) => !line.startsWith('data:') && line !== '')
            replaced = `${[...kept, `data: ${JSON.stringify(replacement)}`].join('\n')}\n\n`
          }
        }
      } catch {
        // Not JSON: not a JSON-RPC message, passed on as it is.
      }
    }
    controller.enqueue(encoder.encode(replaced ?? block))
  }
  const transform = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      buffer += decoder.decode(chunk, { stream: true })
      let match = boundary.exec(buffer)
      while (match !== null) {
        const cut = match.index + match[0].length
        emit(controller, buffer.slice(0, cut))
        buffer = buffer.slice(cut)
        match = boundary.exec(buffer)
      }
    },
    flush(controller) {
      buffer += decoder.decode()
      if (buffer.length > 0) controller.enqueue(encoder.encode(buffer))
      end()
    },
  })
  const reader = body.pipeThrough(transform).getReader()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          end()
          controller.close()
        } else controller.enqueue(value)
      } catch (error) {
        end()
        controller.error(error)
      }
    },
    async cancel(reason) {
      end()
      await reader.cancel(reason)
    },
  })
}
