// What the three servers share: the tool, the scope, the JSON-RPC request the load sends, and the
// child-process plumbing (the token-endpoint benchmark's, reused).
export { announce, failStart, freePort } from '../../token-endpoint/lib/common.mjs'

/** The one tool every server exposes: returns its `text` argument unchanged. */
export const TOOL = 'echo'
/** The scope the kit's tool rule (and the gateway's) requires. */
export const SCOPE = 'tools.echo'
/** The argument every call sends; the result's text must equal it. */
export const ECHO_TEXT = 'hello from the MCP tool-call benchmark'
export const PROTOCOL_VERSION = '2026-07-28'

/**
 * A stateless 2026-07-28 `tools/call` JSON-RPC request: the client's protocol version, info and
 * capabilities ride in `_meta`, so no `initialize` comes first.
 */
export function toolCallBody(id = 1, text = ECHO_TEXT) {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: TOOL,
      arguments: { text },
      _meta: {
        'io.modelcontextprotocol/protocolVersion': PROTOCOL_VERSION,
        'io.modelcontextprotocol/clientInfo': { name: 'deputy-bench', version: '1.0.0' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  })
}

/** The HTTP headers the SDK's 2026-07-28 transport requires on a POST, plus a Bearer token. */
export function toolCallHeaders(token) {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': PROTOCOL_VERSION,
    'mcp-method': 'tools/call',
    'mcp-name': TOOL,
    ...(token !== undefined && { authorization: `Bearer ${token}` }),
  }
}
