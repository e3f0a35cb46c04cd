/** Where the gateway sends the MCP requests it lets through. */
export interface Upstream {
  /**
   * Forwards one MCP HTTP request (POST, GET or DELETE) and answers with the upstream's response.
   * `request` no longer carries the client's `Authorization`; `body` is the POST body as received
   * and `parsedBody` its JSON (undefined when it is not JSON).
   */
  handle(request: Request, body: Uint8Array | undefined, parsedBody: unknown): Promise<Response>
  /** Stops the upstream: ends open streams, stops child processes. */
  close(): Promise<void>
}

/** A JSON-RPC error answer from the gateway itself, for requests it cannot pass on. */
export function rpcErrorResponse(
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  })
}

/** JSON-RPC 2.0 §5.1 "Internal error"; the SDKs use it for transport-level failures too. */
export const INTERNAL_ERROR = -32603
/** JSON-RPC 2.0 §5.1 "Invalid Request". */
export const INVALID_REQUEST = -32600
