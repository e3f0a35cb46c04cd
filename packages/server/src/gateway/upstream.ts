import type { RpcBody } from './messages.js'

/** Who the gateway forwards a request for. */
export interface Caller {
  /** The access token's `sub`: the person (or, for client credentials, the agent). */
  readonly sub: string
}

/** Where the gateway sends the MCP requests it lets through. */
export interface Upstream {
  /**
   * Forwards one MCP HTTP request (POST, GET or DELETE) and answers with the upstream's response.
   * `request` carries neither the client's `Authorization` nor its body: a POST's content is
   * `body`, the JSON-RPC value the gateway parsed and judged, which the upstream sends on
   * re-serialised, never as the bytes the client sent (upstream parsers are more lenient).
   */
  handle(request: Request, body: RpcBody['value'] | undefined, caller: Caller): Promise<Response>
  /** Stops the upstream: ends open streams, stops child processes. */
  close(): Promise<void>
}

/** A JSON-RPC error answer from the gateway itself, for requests it cannot pass on. */
export function rpcErrorResponse(
  status: number,
  code: number,
  message: string,
  options: { headers?: Record<string, string>; id?: string | number | null } = {},
): Response {
  return new Response(
    JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: options.id ?? null }),
    {
      status,
      headers: {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        ...options.headers,
      },
    },
  )
}

/** JSON-RPC 2.0 §5.1 "Internal error"; the SDKs use it for transport-level failures too. */
export const INTERNAL_ERROR = -32603
/** JSON-RPC 2.0 §5.1 "Invalid Request". */
export const INVALID_REQUEST = -32600
/**
 * JSON-RPC 2.0 §5.1 leaves -32000 to -32099 to the server; the official SDKs answer transport
 * refusals (unsupported media type, not acceptable, busy) with -32000.
 */
export const SERVER_ERROR = -32000
/** The code the official SDKs answer an unknown or ended `Mcp-Session-Id` with (HTTP 404). */
export const SESSION_NOT_FOUND = -32001

/** An answer an upstream read whole (a JSON body), as it came: status, headers and bytes. */
export interface WholeAnswer {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  readonly bytes: Uint8Array
}

const wholeAnswers = new WeakMap<Response, WholeAnswer>()

/**
 * The Response of an answer read whole, which the gateway can read back with
 * {@link wholeAnswer} without a stream (and, under @hono/node-server, without turning its light
 * Response into a full one: reading `body` or `statusText` does that).
 */
export function answerRead(answer: WholeAnswer): Response {
  const response = new Response(answer.bytes as Uint8Array<ArrayBuffer>, {
    status: answer.status,
    statusText: answer.statusText,
    headers: answer.headers,
  })
  wholeAnswers.set(response, answer)
  return response
}

/** What {@link answerRead} was given for `response`; undefined for any other Response. */
export function wholeAnswer(response: Response): WholeAnswer | undefined {
  return wholeAnswers.get(response)
}
