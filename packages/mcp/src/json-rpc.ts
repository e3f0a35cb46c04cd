import type { CallToolResult } from '@modelcontextprotocol/server'

/** A JSON-RPC request as it arrived in the HTTP body, before the SDK validated it. */
export interface JsonRpcRequest {
  readonly id?: unknown
  readonly method?: unknown
  readonly params?: unknown
}

/** The requests of a JSON-RPC body (one message or a batch); responses and junk are left out. */
export function jsonRpcRequests(body: unknown): readonly JsonRpcRequest[] {
  const messages = Array.isArray(body) ? body : [body]
  return messages.filter(
    (message): message is JsonRpcRequest =>
      message !== null && typeof message === 'object' && 'method' in message,
  )
}

/**
 * The arguments of the `tools/call` with this id as the client sent them, before the input
 * schema parsed them: what the audit digest is taken of.
 */
export function sentToolArguments(requests: readonly JsonRpcRequest[], id: unknown): unknown {
  const params = requests.find((request) => request.method === 'tools/call' && request.id === id)
    ?.params as { arguments?: unknown } | undefined
  return params?.arguments
}

/** A tool result that tells the caller, in one line, why the tool did not do its job. */
export function toolError(message: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: message }] }
}
