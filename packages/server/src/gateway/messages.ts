import { z } from 'zod'

/** A JSON-RPC message as the gateway looks at it: only the fields it reads. */
export interface RpcMessage {
  readonly id?: unknown
  readonly method?: unknown
  readonly params?: unknown
  readonly result?: unknown
  readonly error?: unknown
}

/** A POST body the gateway read: the JSON value to pass on and its messages. */
export interface RpcBody {
  /** The parsed body: one message, or a (2025-03-26) batch of them. */
  readonly value: RpcMessage | RpcMessage[]
  readonly messages: readonly RpcMessage[]
}

/** Why a POST body does not go on: the HTTP status and the JSON-RPC error to answer with. */
export interface RpcBodyRefusal {
  readonly status: number
  readonly code: number
  readonly message: string
  /** The request's id, when the refusal is about one request (JSON-RPC 2.0 §5). */
  readonly id: string | number | null
}

/** JSON-RPC 2.0 §5.1 "Parse error". */
export const PARSE_ERROR = -32700
/** JSON-RPC 2.0 §5.1 "Invalid Request". */
const INVALID_REQUEST = -32600
/** JSON-RPC 2.0 §5.1 "Invalid params". */
const INVALID_PARAMS = -32602

/** The most messages one batch may hold: the official SDK's bound (`MAX_BATCH_SIZE`). */
export const MAX_BATCH = 100
/**
 * How deep arrays and objects may nest in a body. Far beyond any tool's arguments, and far below
 * what would overflow the stack of `JSON.stringify`, which re-serialises every body passed on.
 */
export const MAX_DEPTH = 64

// RFC 8259 §8.1: JSON text exchanged between systems is UTF-8; a parser MAY ignore a leading byte
// order mark, which TextDecoder drops (`ignoreBOM: false`). Anything else that is not UTF-8 (a
// stray byte, UTF-16 with its BOM) is a parse error rather than U+FFFD: bytes the gateway reads one
// way must not reach an upstream that decodes them another.
const utf8 = new TextDecoder('utf-8', { fatal: true })

// MCP basic protocol "Requests": an id is a string or an integer, never null.
const requestId = z.union([z.string(), z.int()])
// MCP: `params` and `result` are objects (JSON-RPC would allow an array of params; MCP never does).
const object = z.record(z.string(), z.unknown())

const messageSchema = z
  .looseObject({
    jsonrpc: z.literal('2.0'),
    id: requestId.optional(),
    method: z.string().optional(),
    params: object.optional(),
    result: object.optional(),
    error: z.looseObject({ code: z.int(), message: z.string() }).optional(),
  })
  .superRefine((message, context) => {
    const has = (key: string) => Object.hasOwn(message, key)
    if (has('method')) {
      // A request, or a notification without an id (JSON-RPC 2.0 §4.1).
      if (has('result') || has('error')) {
        context.addIssue({ code: 'custom', message: 'a request has no result or error' })
      }
      // tools/call is a request: as a notification it would run with no answer to observe.
      if (message.method === 'tools/call' && !has('id')) {
        context.addIssue({ code: 'custom', path: ['id'], message: 'tools/call needs an id' })
      }
    } else if (!has('id')) {
      context.addIssue({ code: 'custom', message: 'neither a request nor a response' })
    } else if (has('result') === has('error')) {
      // JSON-RPC 2.0 §5: a response holds exactly one of the two.
      context.addIssue({ code: 'custom', message: 'a response holds either result or error' })
    }
  })

// Built once: a zod schema costs more to build than to run.
const batchSchema = z.array(messageSchema)

// MCP server "Tools", CallToolRequest: `name` is a string and `arguments` an object. A name
// with a control character names no tool anyone could list, and would only reach logs.
const callParamsSchema = z.looseObject({
  name: z
    .string()
    .min(1, 'must not be empty')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are the point
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not hold a control character'),
  arguments: object.optional(),
})

function tooDeep(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [item, depth] = next
    if (item === null || typeof item !== 'object') continue
    if (depth > MAX_DEPTH) return true
    for (const child of Object.values(item)) stack.push([child, depth + 1])
  }
  return false
}

function refusal(status: number, code: number, message: string, id: RpcBodyRefusal['id'] = null) {
  return { status, code, message, id }
}

/** Where in the body a zod issue is: the batch index (for a batch) and the field. */
function where(path: readonly PropertyKey[], batch: boolean): string {
  const [index, ...field] = path
  const parts = [batch ? `message ${String(index)}` : '', field.map(String).join('.')]
  return parts.filter((part) => part !== '').join(', ') || 'the message'
}

/**
 * Reads a POST body as JSON-RPC (JSON-RPC 2.0 §4-§6 and MCP's rules on ids, params and
 * `tools/call`). Either every message in it is well formed and the gateway can judge it, or the
 * whole body is refused: a parse error (-32700) for what is not UTF-8 JSON, Invalid Request
 * (-32600) for a shape JSON-RPC or MCP does not allow, an empty or oversized batch, nesting deeper
 * than {@link MAX_DEPTH} or a request id used twice in a batch, and Invalid params (-32602) for a
 * `tools/call` whose name or arguments are not what the schema says. Nothing is passed on in part.
 */
export function parseRpcBody(bytes: Uint8Array): RpcBody | RpcBodyRefusal {
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch {
    return refusal(400, PARSE_ERROR, 'Parse error: the body is not UTF-8 JSON')
  }
  if (tooDeep(value)) {
    return refusal(400, INVALID_REQUEST, `Invalid Request: nested deeper than ${MAX_DEPTH} levels`)
  }
  const batch = Array.isArray(value)
  const list: unknown[] = Array.isArray(value) ? value : [value]
  // JSON-RPC 2.0 §6: a batch is an array with at least one value.
  if (list.length === 0) return refusal(400, INVALID_REQUEST, 'Invalid Request: an empty batch')
  if (list.length > MAX_BATCH) {
    return refusal(400, INVALID_REQUEST, `Invalid Request: a batch holds at most ${MAX_BATCH}`)
  }
  const checked = batchSchema.safeParse(list)
  if (!checked.success) {
    const issue = checked.error.issues[0]
    const path = issue?.path ?? []
    return refusal(
      400,
      INVALID_REQUEST,
      `Invalid Request: ${where(path, batch)}: ${issue?.message ?? 'not a JSON-RPC message'}`,
    )
  }
  const messages = list as RpcMessage[]
  const ids = new Set<unknown>()
  for (const [index, message] of messages.entries()) {
    if (message.method === undefined || message.id === undefined) continue
    // Answers are matched to requests by id: two requests with one id cannot both be observed.
    if (ids.has(message.id)) {
      return refusal(400, INVALID_REQUEST, `Invalid Request: message ${index}: id used twice`)
    }
    ids.add(message.id)
    if (message.method !== 'tools/call') continue
    const params = callParamsSchema.safeParse(message.params ?? null)
    if (!params.success) {
      const issue = params.error.issues[0]
      const field = ['params', ...(issue?.path ?? [])].map(String).join('.')
      return refusal(
        400,
        INVALID_PARAMS,
        `Invalid params: ${batch ? `message ${index}, ` : ''}${field}: ${issue?.message ?? 'invalid'}`,
        message.id as string | number,
      )
    }
  }
  return { value: batch ? messages : (messages[0] as RpcMessage), messages }
}

/** One `tools/call` request: its id, the tool, its arguments and the progress token it asks with. */
export interface ToolCallRequest {
  readonly id: unknown
  readonly name: string
  readonly arguments: unknown
  readonly progressToken?: string | number
}

/** The `tools/call` requests of a body read by {@link parseRpcBody}, with the tool each names. */
export function toolCalls(messages: readonly RpcMessage[]): ToolCallRequest[] {
  const calls: ToolCallRequest[] = []
  for (const message of messages) {
    if (message.method !== 'tools/call') continue
    const params = message.params as {
      name: string
      arguments?: unknown
      _meta?: { progressToken?: unknown }
    }
    const token = params._meta?.progressToken
    calls.push({
      id: message.id,
      name: params.name,
      arguments: params.arguments,
      // MCP ProgressToken: a string or a number.
      ...((typeof token === 'string' || typeof token === 'number') && { progressToken: token }),
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
 * message and may return a replacement; the event goes on once it has settled, so what it records
 * is written before the client reads the message. An event it leaves alone goes out as the exact
 * bytes that came in (comments, ids, retry fields, keep-alives included). `onEnd` runs once when
 * the stream ends, errors or is cancelled by the reader, and is waited for.
 */
export function observeEventStream(
  body: ReadableStream<Uint8Array>,
  onMessage: (message: RpcMessage) => Promise<RpcMessage | undefined>,
  onEnd: () => Promise<void>,
): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder()
  let buffer = ''
  let ended: Promise<void> | undefined
  const end = () => {
    ended ??= onEnd()
    return ended
  }
  // An event ends at a blank line (WHATWG HTML §9.2.6); the SDKs write LF, some servers CRLF.
  const boundary = /\r?\n\r?\n/
  const emit = async (controller: TransformStreamDefaultController<Uint8Array>, block: string) => {
    const lines = block.split(/\r?\n/)
    const data = lines
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
    let parsed: unknown
    if (data.length > 0) {
      try {
        parsed = JSON.parse(data.join('\n'))
      } catch {
        // Not JSON: not a JSON-RPC message, passed on as it is.
      }
    }
    let replaced: string | undefined
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const replacement = await onMessage(parsed as RpcMessage)
      if (replacement !== undefined) {
        const kept = lines.filter((line) => !line.startsWith('data:') && line !== '')
        replaced = `${[...kept, `data: ${JSON.stringify(replacement)}`].join('\n')}\n\n`
      }
    }
    controller.enqueue(encoder.encode(replaced ?? block))
  }
  const transform = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      buffer += decoder.decode(chunk, { stream: true })
      let match = boundary.exec(buffer)
      while (match !== null) {
        const cut = match.index + match[0].length
        const block = buffer.slice(0, cut)
        buffer = buffer.slice(cut)
        await emit(controller, block)
        match = boundary.exec(buffer)
      }
    },
    async flush(controller) {
      buffer += decoder.decode()
      if (buffer.length > 0) controller.enqueue(encoder.encode(buffer))
      await end()
    },
  })
  const reader = body.pipeThrough(transform).getReader()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          await end()
          controller.close()
        } else controller.enqueue(value)
      } catch (error) {
        await end()
        controller.error(error)
      }
    },
    async cancel(reason) {
      await end()
      await reader.cancel(reason)
    },
  })
}
