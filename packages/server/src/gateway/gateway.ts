import {
  type AccessTokenVerifier,
  type AuditHook,
  bearerChallenge,
  type Identity,
  metadataResponse,
  missingScopes,
  type ProtectedResourceMetadata,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
  reportToolCall,
  staticRefusal,
  type TokenCheck,
  type ToolCallEvent,
  tokenRefusalResponse,
  verifyAccessToken,
} from '@deputy/mcp'
import { Hono } from 'hono'
import {
  isResponseTo,
  observeEventStream,
  type RpcMessage,
  rpcMessages,
  toolCalls,
  toolListIds,
} from './messages.js'
import { type GatewayRules, NO_RULES, ruleFor, scopesOf } from './rules.js'
import { INVALID_REQUEST, rpcErrorResponse, type Upstream } from './upstream.js'

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** The gateway's public MCP URL, e.g. `https://tools.example/mcp`: the `aud` of its tokens. */
  resource: string
  /** Issuers clients get tokens from (RFC 9728 `authorization_servers`). */
  authorizationServers: string[]
  /** Checks access tokens; `aud` must be `resource`. */
  verifier: AccessTokenVerifier
  /** The MCP server behind the gateway. */
  upstream: Upstream
  rules?: GatewayRules
  /** Receives every tool call: who, through which agent, which tool, decision and outcome. */
  audit?: AuditHook
  /** RFC 9728 `resource_name`. */
  resourceName?: string
  /** Largest request body passed on; default 4 MiB. */
  maxBodyBytes?: number
  /** Unexpected errors: an unreachable issuer or upstream, a failing audit sink. */
  onError?: (error: Error) => void
  clock?: () => Date
}

/** A running gateway's HTTP side. */
export interface Gateway {
  /** Serves the MCP endpoint at the resource's path and the RFC 9728 metadata documents. */
  readonly app: Hono
  readonly fetch: (request: Request) => Promise<Response>
  readonly resourceMetadataUrl: string
  /** Stops the upstream (open streams, child processes). */
  close(): Promise<void>
}

const DEFAULT_MAX_BODY = 4 * 1024 * 1024
/** How many MCP sessions the gateway remembers the owner of. */
const MAX_SESSIONS = 10_000

interface Call {
  readonly id: unknown
  readonly name: string
  readonly arguments: unknown
}

type Verdict =
  | { readonly kind: 'allow' }
  | { readonly kind: 'scope'; readonly scopes: readonly string[] }
  | { readonly kind: 'deny'; readonly reason: 'role' | 'permission'; readonly message: string }

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  })
}

function toolError(id: unknown, message: string): RpcMessage & { jsonrpc: '2.0' } {
  return {
    jsonrpc: '2.0',
    id,
    result: { isError: true, content: [{ type: 'text', text: message }] },
  }
}

// The client's token stays in the gateway: neither upstream sees it (MCP authorization "Token
// Handling", "Access Token Privilege Restriction").
function withoutCredentials(request: Request): Request {
  const headers = new Headers(request.headers)
  headers.delete('authorization')
  return new Request(request.url, {
    method: request.method,
    headers,
    signal: request.signal,
  })
}

async function readBody(request: Request, limit: number): Promise<Uint8Array | 'too_large'> {
  const declared = Number(request.headers.get('content-length') ?? '0')
  if (declared > limit) return 'too_large'
  // With a declared length within the limit, HTTP/1.1 framing bounds what arrives off the wire:
  // read it in one piece, which skips the web-stream machinery (@hono/node-server reads such a
  // body straight from the socket). A Request built in-process could carry more than it
  // declares, so the size is checked again.
  if (request.headers.has('content-length') && Number.isSafeInteger(declared) && declared >= 0) {
    const whole = new Uint8Array(await request.arrayBuffer())
    return whole.byteLength > limit ? 'too_large' : whole
  }
  if (request.body === null) return new Uint8Array()
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return 'too_large'
    }
    chunks.push(value)
  }
  const body = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return body
}

function parseJson(body: Uint8Array): unknown {
  if (body.byteLength === 0) return undefined
  try {
    return JSON.parse(new TextDecoder().decode(body))
  } catch {
    // Not JSON: the upstream answers it with its own parse error.
    return undefined
  }
}

/**
 * Puts an existing MCP server behind OAuth: publishes RFC 9728 metadata for the gateway's
 * resource, challenges requests without a valid token for exactly this resource, applies the
 * per-tool rules to `tools/call` before the upstream sees it, reports every tool call to the
 * audit hook, and passes everything else through untouched, without the client's token.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const resource = new URL(options.resource)
  const resourceId = options.resource
  const metadataUrl = protectedResourceMetadataUrl(resource)
  const rules = options.rules ?? NO_RULES
  const clock = options.clock ?? (() => new Date())
  const onError = options.onError ?? ((error: Error) => console.error('[deputy gateway]', error))
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY
  const scopesSupported = scopesOf(rules)
  const challengeScopes = rules.challengeScopes ?? scopesSupported
  /** Mcp-Session-Id → the `sub` that opened it (MCP security best practices, "Session Hijacking"). */
  const owners = new Map<string, string>()

  const metadata: ProtectedResourceMetadata = {
    resource: resourceId,
    authorization_servers: [...options.authorizationServers],
    ...(scopesSupported.length > 0 && { scopes_supported: scopesSupported }),
    bearer_methods_supported: ['header'],
    ...(options.resourceName !== undefined && { resource_name: options.resourceName }),
  }

  function report(
    identity: Identity,
    call: Call,
    fields: Pick<ToolCallEvent, 'type' | 'decision' | 'reason' | 'outcome'>,
  ): Promise<void> {
    return reportToolCall(options.audit, onError, {
      at: clock(),
      resource: resourceId,
      identity,
      tool: call.name,
      args: call.arguments,
      fields,
    })
  }

  function verdict(identity: Identity, call: Call): Verdict {
    const rule = ruleFor(rules, call.name)
    if (rule === undefined) return { kind: 'allow' }
    if (missingScopes(identity, rule.scopes).length > 0) {
      return { kind: 'scope', scopes: rule.scopes ?? [] }
    }
    const refusal = staticRefusal(rule, identity)
    if (refusal === 'role') {
      return {
        kind: 'deny',
        reason: 'role',
        message: `You do not have a role that may call ${call.name}.`,
      }
    }
    if (refusal === 'permission') {
      return {
        kind: 'deny',
        reason: 'permission',
        message: `You do not have permission to call ${call.name}.`,
      }
    }
    return { kind: 'allow' }
  }

  function refuseToken(check: Extract<TokenCheck, { ok: false }>): Response {
    return tokenRefusalResponse(check, {
      resourceMetadata: metadataUrl,
      scope: challengeScopes,
      onError,
    })
  }

  /**
   * Watches the upstream's answer: reports the outcome of each allowed tool call and, when the
   * rules hide tools, leaves them out of `tools/list` results. Untouched messages keep their bytes.
   */
  async function watch(
    response: Response,
    identity: Identity,
    calls: readonly Call[],
    listIds: readonly unknown[],
  ): Promise<Response> {
    const pending = new Map(calls.map((call) => [call.id, call]))
    const hidden = (name: unknown) => {
      if (typeof name !== 'string') return false
      const rule = ruleFor(rules, name)
      return rule !== undefined && staticRefusal(rule, identity) !== undefined
    }
    const filterLists = rules.hideForbiddenTools && listIds.length > 0
    if ((pending.size === 0 && !filterLists) || response.body === null) return response
    const onMessage = (message: RpcMessage): RpcMessage | undefined => {
      for (const [id, call] of pending) {
        if (!isResponseTo(message, id)) continue
        pending.delete(id)
        const failed =
          'error' in message || (message.result as { isError?: unknown })?.isError === true
        void report(identity, call, {
          type: 'tool.called',
          decision: 'allow',
          reason: undefined,
          outcome: failed ? 'error' : 'success',
        })
        return undefined
      }
      if (!filterLists || !listIds.some((id) => isResponseTo(message, id))) return undefined
      const result = message.result as { tools?: unknown } | undefined
      if (!Array.isArray(result?.tools)) return undefined
      const tools = result.tools.filter((tool) => !hidden((tool as { name?: unknown })?.name))
      if (tools.length === result.tools.length) return undefined
      return { ...message, result: { ...result, tools } }
    }
    // The upstream never answered (stream cut, client gone): the call still happened.
    const onEnd = () => {
      for (const call of pending.values()) {
        void report(identity, call, {
          type: 'tool.called',
          decision: 'allow',
          reason: undefined,
          outcome: 'error',
        })
      }
      pending.clear()
    }
    const headers = new Headers(response.headers)
    const type = headers.get('content-type') ?? ''
    if (type.includes('text/event-stream')) {
      return new Response(observeEventStream(response.body, onMessage, onEnd), {
        status: response.status,
        statusText: response.statusText,
        headers,
      })
    }
    if (!type.includes('json')) {
      onEnd()
      return response
    }
    const text = await response.text()
    let out = text
    try {
      const parsed: unknown = JSON.parse(text)
      const messages: RpcMessage[] = Array.isArray(parsed) ? parsed : [parsed]
      let changed = false
      const next = messages.map((message) => {
        const replacement = onMessage(message)
        if (replacement !== undefined) changed = true
        return replacement ?? message
      })
      if (changed) out = JSON.stringify(Array.isArray(parsed) ? next : next[0])
    } catch {
      // Not JSON after all: passed on as it is.
    }
    onEnd()
    headers.delete('content-length')
    return new Response(out, {
      status: response.status,
      statusText: response.statusText,
      headers,
    })
  }

  async function handleMcp(request: Request): Promise<Response> {
    // CORS preflights never carry credentials (Fetch §4.8); the upstream answers them.
    if (request.method === 'OPTIONS') {
      return options.upstream.handle(withoutCredentials(request), undefined, undefined)
    }
    const check = await verifyAccessToken(request.headers.get('authorization'), options.verifier)
    if (!check.ok) return refuseToken(check)
    const { identity } = check

    const sessionId = request.headers.get('mcp-session-id')
    const owner = sessionId === null ? undefined : owners.get(sessionId)
    // A session opened by one person is not another's to use, whatever token comes with it.
    if (owner !== undefined && owner !== identity.sub) {
      return rpcErrorResponse(404, -32001, 'Session not found')
    }

    let body: Uint8Array | undefined
    let parsed: unknown
    if (request.method === 'POST') {
      const read = await readBody(request, maxBody)
      if (read === 'too_large') {
        return rpcErrorResponse(413, INVALID_REQUEST, 'Request body too large')
      }
      body = read
      parsed = parseJson(read)
    }
    const messages = rpcMessages(parsed)
    const calls = toolCalls(messages)

    // 2026-07-28 Streamable HTTP: Mcp-Name must match the body, or a gate reading the header and
    // an upstream reading the body would judge different tools.
    const named = request.headers.get('mcp-name')
    if (named !== null && calls.length === 1 && calls[0]?.name !== named) {
      return rpcErrorResponse(400, -32020, 'Mcp-Name header does not match the request body')
    }

    const verdicts = calls.map((call) => ({ call, verdict: verdict(identity, call) }))
    const short = verdicts.filter(({ verdict }) => verdict.kind === 'scope')
    if (short.length > 0) {
      for (const { call } of short) {
        await report(identity, call, {
          type: 'tool.refused',
          decision: 'insufficient_scope',
          reason: 'scope',
          outcome: 'refused',
        })
      }
      // MCP authorization "Scope Challenge Handling": every scope the operation needs, at once.
      const scopes = [
        ...new Set(
          short.flatMap(({ verdict }) => (verdict.kind === 'scope' ? verdict.scopes : [])),
        ),
      ]
      const description = 'The access token lacks a scope this tool needs'
      return json(
        403,
        { error: 'insufficient_scope', error_description: description },
        {
          'www-authenticate': bearerChallenge({
            error: 'insufficient_scope',
            errorDescription: description,
            resourceMetadata: metadataUrl,
            scope: scopes,
          }),
        },
      )
    }
    const denied = verdicts.filter(({ verdict }) => verdict.kind === 'deny')
    if (denied.length > 0) {
      const answers = new Map<unknown, RpcMessage>()
      for (const { call, verdict } of denied) {
        if (verdict.kind !== 'deny') continue
        await report(identity, call, {
          type: 'tool.refused',
          decision: 'deny',
          reason: verdict.reason,
          outcome: 'refused',
        })
        answers.set(call.id, toolError(call.id, verdict.message))
      }
      if (!Array.isArray(parsed)) return json(200, answers.get(calls[0]?.id))
      // A batch (2025-03-26) with a refused call is not passed on in part: every request in it
      // gets an answer here, the refused calls their tool error.
      const replies = messages
        .filter((message) => message.method !== undefined && message.id !== undefined)
        .map(
          (message) =>
            answers.get(message.id) ?? {
              jsonrpc: '2.0',
              id: message.id,
              error: {
                code: INVALID_REQUEST,
                message: 'Not passed on: the batch holds a refused tool call',
              },
            },
        )
      return json(200, replies)
    }

    const response = await options.upstream.handle(withoutCredentials(request), body, parsed)
    const opened = response.headers.get('mcp-session-id')
    if (opened !== null && !owners.has(opened)) {
      if (owners.size >= MAX_SESSIONS) {
        const oldest = owners.keys().next().value
        if (oldest !== undefined) owners.delete(oldest)
      }
      owners.set(opened, identity.sub)
    }
    if (request.method === 'DELETE' && sessionId !== null && response.ok) owners.delete(sessionId)
    return watch(response, identity, calls, toolListIds(messages))
  }

  const app = new Hono()
  for (const path of new Set([
    protectedResourceMetadataPath(resource),
    '/.well-known/oauth-protected-resource',
  ])) {
    // RFC 9728 §3: path-aware location first, the root one for clients that only try that.
    app.all(path, (c) => metadataResponse(c.req.raw, metadata))
  }
  app.all(resource.pathname, (c) => handleMcp(c.req.raw))

  return {
    app,
    fetch: (request) => Promise.resolve(app.fetch(request)),
    resourceMetadataUrl: metadataUrl,
    close: () => options.upstream.close(),
  }
}
