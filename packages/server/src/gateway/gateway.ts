import {
  type AccessTokenVerifier,
  type ApprovalOutcome,
  type AuditFailure,
  type AuditHook,
  approvalRefusal,
  argumentsDigest,
  awaitApproval,
  bearerChallenge,
  browserPageOr,
  cibaClient,
  dpopReplayCache,
  type Identity,
  metadataResponse,
  missingScopes,
  newCallId,
  type ProtectedResourceMetadata,
  plainBindingMessage,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
  readBodyWithin,
  reportToolCall,
  type StateStore,
  staticRefusal,
  type TokenCheck,
  type ToolApprovalDeps,
  type ToolApprovalOptions,
  type ToolCallEvent,
  type ToolRule,
  tokenRefusalResponse,
  userState,
  verifyRequestToken,
  waitingMessage,
  withoutCredentials,
} from '@deputy/mcp'
import { Hono } from 'hono'
import { acceptsEventStream, eventStreamAnswer, progressFollowing } from './event-stream-answer.js'
import {
  isResponseTo,
  observeEventStream,
  parseRpcBody,
  type RpcBody,
  type RpcMessage,
  type ToolCallRequest,
  toolCalls,
  toolListIds,
} from './messages.js'
import { type GatewayRules, NO_RULES, ruleFor, scopesOf } from './rules.js'
import {
  INTERNAL_ERROR,
  INVALID_REQUEST,
  rpcErrorResponse,
  SERVER_ERROR,
  SESSION_NOT_FOUND,
  type Upstream,
  wholeAnswer,
} from './upstream.js'

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
  /**
   * Receives every tool call: who, through which agent, which tool, decision and outcome. The
   * decision is recorded before the call is forwarded or refused, the outcome before the
   * upstream's answer goes on to the client.
   */
  audit?: AuditHook
  /**
   * When the hook cannot record that a call was allowed: `refuse` (default) answers a JSON-RPC
   * error and forwards nothing; `continue` tells `onError` and forwards the call.
   */
  auditFailure?: AuditFailure
  /**
   * Where calls whose rule has an `approval` ask the person (Deputy's CIBA endpoint, the gateway
   * a confidential CIBA client), and `state`, where pending requests are kept (Deputy's SQL
   * state with `--db`). Without it, a rules file with an approval is refused at start.
   */
  approvals?: ToolApprovalOptions & { state: StateStore }
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
/** As `response.text()` decodes: UTF-8, a leading BOM dropped, bad bytes replaced. */
const utf8 = new TextDecoder()
/** How long a call waits for the person's approval unless `approvals.waitSeconds` says otherwise. */
const DEFAULT_APPROVAL_WAIT_SECONDS = 30

/** State for policy contexts when the gateway keeps none (its rules then read no state). */
const NO_STATE: StateStore = {
  read: async () => undefined,
  update: async () => {
    throw new Error('the gateway keeps no state without approvals')
  },
}
/** How many MCP sessions the gateway remembers the owner of. */
const MAX_SESSIONS = 10_000

interface Call extends ToolCallRequest {
  /** Shared by the call's records: its decision and its outcome. */
  readonly callId: string
  /** The digest of its arguments, shared by its records: computed once, at the first. */
  digest?: Promise<string>
}

/** The methods MCP's Streamable HTTP transport defines for the MCP endpoint. */
const METHODS = new Set(['GET', 'POST', 'DELETE'])

type Verdict =
  | { readonly kind: 'allow' }
  | { readonly kind: 'approval'; readonly rule: ToolRule }
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

// MCP transports, Streamable HTTP "Sending Messages to the Server": the body of a POST is one
// JSON-RPC message or a batch of them, as application/json. RFC 8259 §11 defines no charset
// parameter; one other than UTF-8 describes bytes the gateway does not read.
function mediaTypeRefusal(headers: Headers): Response | undefined {
  const [essence = '', ...parameters] = (headers.get('content-type') ?? '').split(';')
  const charset = parameters
    .map((parameter) => parameter.trim().toLowerCase())
    .find((parameter) => parameter.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/^"(.*)"$/, '$1')
  if (
    essence.trim().toLowerCase() !== 'application/json' ||
    (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
  ) {
    return rpcErrorResponse(
      415,
      SERVER_ERROR,
      'Unsupported Media Type: Content-Type must be application/json (UTF-8)',
    )
  }
  // RFC 9110 §8.4.1: a content coding the server does not accept is answered 415.
  const coding = (headers.get('content-encoding') ?? 'identity').trim().toLowerCase()
  if (coding !== 'identity' && coding !== '') {
    return rpcErrorResponse(415, SERVER_ERROR, 'Unsupported Media Type: bodies are not encoded')
  }
  return undefined
}

/**
 * Puts an existing MCP server behind OAuth: publishes RFC 9728 metadata for the gateway's
 * resource, challenges requests without a valid token for exactly this resource, reads every POST
 * as JSON-RPC (what it cannot read is refused, never forwarded), applies the per-tool rules to
 * `tools/call` before the upstream sees it, records each call's decision before acting on it and
 * its outcome before the answer goes on, and passes the rest through without the client's token,
 * re-serialised from what it parsed.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const resource = new URL(options.resource)
  // The DPoP proofs this gateway accepted, for the replay check (RFC 9449 §11.1).
  const dpopProofs = dpopReplayCache()
  const resourceId = options.resource
  const metadataUrl = protectedResourceMetadataUrl(resource)
  const rules = options.rules ?? NO_RULES
  const clock = options.clock ?? (() => new Date())
  const onError = options.onError ?? ((error: Error) => console.error('[deputy gateway]', error))
  const auditFailure: AuditFailure = options.auditFailure ?? 'refuse'
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY
  const scopesSupported = scopesOf(rules)
  const challengeScopes = rules.challengeScopes ?? scopesSupported
  const approvals = options.approvals
  const needsApprovals = [...Object.values(rules.tools), rules.default].some(
    (rule) => rule?.approval !== undefined,
  )
  if (needsApprovals && approvals === undefined) {
    throw new TypeError('the rules ask for approvals: configure the gateway as a CIBA client')
  }
  const approvalDeps: ToolApprovalDeps | undefined =
    approvals === undefined
      ? undefined
      : {
          resource: resourceId,
          ciba: cibaClient(approvals),
          clientId: approvals.clientId,
          verifier: options.verifier,
          waitSeconds: approvals.waitSeconds ?? DEFAULT_APPROVAL_WAIT_SECONDS,
          expirySeconds: approvals.expirySeconds,
          // CIBA §7.1: the request must contain openid.
          scope: [...new Set(['openid', ...(approvals.scopes ?? [])])].join(' '),
          now: () => clock().getTime(),
        }
  /** The approval each call (by JSON-RPC id) of the request in hand runs with. */
  const approvedBy = new WeakMap<Call, string>()
  /** Mcp-Session-Id → the `sub` that opened it (MCP security best practices, "Session Hijacking"). */
  const owners = new Map<string, string>()

  const metadata: ProtectedResourceMetadata = {
    resource: resourceId,
    authorization_servers: [...options.authorizationServers],
    ...(scopesSupported.length > 0 && { scopes_supported: scopesSupported }),
    bearer_methods_supported: ['header'],
    ...(options.resourceName !== undefined && { resource_name: options.resourceName }),
  }

  /** Hands one record of a call to the audit hook; `false` when the hook failed (see onError). */
  function report(
    identity: Identity,
    call: Call,
    fields: Pick<ToolCallEvent, 'type' | 'decision' | 'reason' | 'outcome'>,
  ): Promise<boolean> {
    const approvalId = approvedBy.get(call)
    call.digest ??= argumentsDigest(call.arguments)
    return reportToolCall(options.audit, onError, {
      callId: call.callId,
      at: clock(),
      resource: resourceId,
      identity,
      tool: call.name,
      args: call.arguments,
      argumentsDigest: call.digest,
      fields:
        approvalId === undefined
          ? fields
          : {
              type: fields.type,
              decision: fields.decision,
              reason: fields.reason,
              outcome: fields.outcome,
              approvalId,
            },
    })
  }

  async function verdict(identity: Identity, call: Call): Promise<Verdict> {
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
    if (rule.approval === undefined) return { kind: 'allow' }
    const needed =
      rule.approval.when === undefined ||
      (await rule.approval.when(policyContext(identity, call))) === true
    return needed ? { kind: 'approval', rule } : { kind: 'allow' }
  }

  function policyContext(identity: Identity, call: Call) {
    return {
      resource: resourceId,
      identity,
      tool: call.name,
      arguments: call.arguments,
      state: userState(approvals?.state ?? NO_STATE, { resource: resourceId, sub: identity.sub }),
    }
  }

  /**
   * One call that needs the person's approval (issue 11 §5): asked for, or found pending from an
   * identical earlier call, and waited for. Undefined once approved (the call goes on, naming
   * its approval); otherwise the answer to give, its refusal recorded.
   */
  async function holdForApproval(
    identity: Identity,
    call: Call,
    rule: ToolRule,
    signal: AbortSignal,
    onWaiting: () => void = () => {},
  ): Promise<RpcMessage | undefined> {
    const args = call.arguments
    if (
      approvalDeps === undefined ||
      args === null ||
      typeof args !== 'object' ||
      Array.isArray(args)
    ) {
      await report(identity, call, {
        type: 'tool.refused',
        decision: 'needs_approval',
        reason: 'approval',
        outcome: 'refused',
      })
      return toolError(
        call.id,
        `This call to ${call.name} needs the approval of the person you act for.`,
      )
    }
    const context = policyContext(identity, call)
    const given = rule.approval?.bindingMessage
    let outcome: ApprovalOutcome
    try {
      outcome = await awaitApproval(approvalDeps, {
        identity,
        state: context.state,
        tool: call.name,
        args: args as Record<string, unknown>,
        bindingMessage: plainBindingMessage(
          typeof given === 'function' ? given(context) : (given ?? `Run ${call.name}`),
        ),
        onWaiting: async () => onWaiting(),
        signal,
      })
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)))
      await report(identity, call, {
        type: 'tool.refused',
        decision: 'needs_approval',
        reason: 'approval_error',
        outcome: 'refused',
      })
      return toolError(
        call.id,
        `This call to ${call.name} needs approval, which could not be asked for right now.`,
      )
    }
    if (outcome.status === 'approved') {
      approvedBy.set(call, outcome.approvalId)
      return undefined
    }
    if (outcome.approvalId !== undefined) approvedBy.set(call, outcome.approvalId)
    const refusal = approvalRefusal(outcome, call.name, identity)
    await report(identity, call, {
      type: 'tool.refused',
      decision: refusal.decision,
      reason: refusal.reason,
      outcome: 'refused',
    })
    return { jsonrpc: '2.0', id: call.id, result: refusal.result } as RpcMessage
  }

  function refuseToken(check: Extract<TokenCheck, { ok: false }>): Response {
    return tokenRefusalResponse(check, {
      resourceMetadata: metadataUrl,
      scope: challengeScopes,
      onError,
    })
  }

  /**
   * Answers a body the gateway does not pass on: `answers` for some of its requests, and for
   * every other request in a (2025-03-26) batch an error saying it was not passed on.
   */
  function answerHere(body: RpcBody, answers: ReadonlyMap<unknown, RpcMessage>): Response {
    if (!Array.isArray(body.value)) return json(200, answers.get(body.value.id))
    const replies = body.messages
      .filter((message) => message.method !== undefined && message.id !== undefined)
      .map(
        (message) =>
          answers.get(message.id) ?? {
            jsonrpc: '2.0',
            id: message.id,
            error: {
              code: INVALID_REQUEST,
              message: 'Not passed on: the batch holds a call that was not',
            },
          },
      )
    return json(200, replies)
  }

  /**
   * Watches the upstream's answer: records the outcome of each allowed tool call before its answer
   * goes on to the client and, when the rules hide tools, leaves them out of `tools/list` results.
   * Untouched messages keep their bytes.
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
    // A JSON answer the upstream read whole is read back without a stream.
    const whole = wholeAnswer(response)
    if ((pending.size === 0 && !filterLists) || (whole === undefined && response.body === null)) {
      await onEnd()
      return response
    }
    async function onMessage(message: RpcMessage): Promise<RpcMessage | undefined> {
      for (const [id, call] of pending) {
        if (!isResponseTo(message, id)) continue
        pending.delete(id)
        const failed =
          'error' in message || (message.result as { isError?: unknown })?.isError === true
        // The call ran: a failing record goes to onError, the answer still to the client.
        await report(identity, call, {
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
    // The upstream never answered (stream cut, client gone): the call was still passed on.
    async function onEnd(): Promise<void> {
      const unanswered = [...pending.values()]
      pending.clear()
      for (const call of unanswered) {
        await report(identity, call, {
          type: 'tool.called',
          decision: 'allow',
          reason: undefined,
          outcome: 'error',
        })
      }
    }
    // The upstream's own Headers when it read the answer whole (then mutable, without a length).
    const headers = whole?.headers ?? new Headers(response.headers)
    const type = headers.get('content-type') ?? ''
    // Only JSON answers are read whole: an event stream is always a body stream.
    const stream = whole === undefined ? response.body : null
    if (type.includes('text/event-stream') && stream !== null) {
      return new Response(observeEventStream(stream, onMessage, onEnd), {
        status: response.status,
        statusText: response.statusText,
        headers,
      })
    }
    if (!type.includes('json')) {
      await onEnd()
      return response
    }
    const text = whole === undefined ? await response.text() : utf8.decode(whole.bytes)
    let out = text
    try {
      const parsed: unknown = JSON.parse(text)
      const messages: RpcMessage[] = Array.isArray(parsed) ? parsed : [parsed]
      let changed = false
      const next: RpcMessage[] = []
      for (const message of messages) {
        const replacement = await onMessage(message)
        if (replacement !== undefined) changed = true
        next.push(replacement ?? message)
      }
      if (changed) out = JSON.stringify(Array.isArray(parsed) ? next : next[0])
    } catch {
      // Not JSON after all: passed on as it is.
    }
    await onEnd()
    headers.delete('content-length')
    return new Response(out, {
      status: whole?.status ?? response.status,
      statusText: whole?.statusText ?? response.statusText,
      headers,
    })
  }

  async function handleMcp(request: Request): Promise<Response> {
    // CORS preflights never carry credentials (Fetch §4.8); the upstream answers them.
    if (request.method === 'OPTIONS') {
      return options.upstream.handle(withoutCredentials(request, true), undefined, { sub: '' })
    }
    const check = await verifyRequestToken(request, options.verifier, {
      replay: dpopProofs,
      publicOrigin: resource,
    })
    if (!check.ok)
      return browserPageOr(request, check, refuseToken(check), () => ({
        name: options.resourceName ?? `MCP server at ${resource.host}`,
        metadata,
        metadataUrl,
      }))
    const { identity } = check
    if (!METHODS.has(request.method)) {
      return rpcErrorResponse(405, SERVER_ERROR, 'Method not allowed', {
        headers: { allow: 'GET, POST, DELETE' },
      })
    }

    const sessionId = request.headers.get('mcp-session-id')
    const owner = sessionId === null ? undefined : owners.get(sessionId)
    // A session opened by one person is not another's to use, whatever token comes with it.
    if (owner !== undefined && owner !== identity.sub) {
      return rpcErrorResponse(404, SESSION_NOT_FOUND, 'Session not found')
    }

    // Only what the gateway read goes on, re-serialised: an upstream never sees bytes it could
    // read otherwise than the rules did (NaN, duplicate keys, other encodings).
    let body: RpcBody | undefined
    if (request.method === 'POST') {
      const unsupported = mediaTypeRefusal(request.headers)
      if (unsupported !== undefined) return unsupported
      const read = await readBodyWithin(request, maxBody)
      if (read === 'too_large') {
        return rpcErrorResponse(413, INVALID_REQUEST, 'Request body too large')
      }
      const parsed = parseRpcBody(read)
      if (!('value' in parsed)) {
        return rpcErrorResponse(parsed.status, parsed.code, parsed.message, { id: parsed.id })
      }
      body = parsed
    }
    const messages = body?.messages ?? []
    const calls: Call[] = toolCalls(messages).map((call) => ({ ...call, callId: newCallId() }))

    // 2026-07-28 Streamable HTTP: Mcp-Name must match the body, or a gate reading the header and
    // an upstream reading the body would judge different tools.
    const named = request.headers.get('mcp-name')
    if (named !== null && calls.length === 1 && calls[0]?.name !== named) {
      return rpcErrorResponse(400, -32020, 'Mcp-Name header does not match the request body')
    }

    const verdicts = await Promise.all(
      calls.map(async (call) => ({ call, verdict: await verdict(identity, call) })),
    )
    const short = verdicts.filter(({ verdict }) => verdict.kind === 'scope')
    if (short.length > 0) {
      // Each refusal is recorded before it is answered; it stands whether or not that worked.
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
    if (body !== undefined && denied.length > 0) {
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
      // A batch (2025-03-26) with a refused call is not passed on in part: every request in it
      // gets an answer here, the refused calls their tool error.
      return answerHere(body, answers)
    }
    const held = verdicts.filter(({ verdict }) => verdict.kind === 'approval')
    if (body !== undefined && held.length > 0) {
      const answers = new Map<unknown, RpcMessage>()
      // A call waits for one person's decision; a batch does not wait in part.
      const alone = !Array.isArray(body.value)
      for (const { call, verdict } of held) {
        if (verdict.kind !== 'approval') continue
        if (!alone) {
          await report(identity, call, {
            type: 'tool.refused',
            decision: 'needs_approval',
            reason: 'approval',
            outcome: 'refused',
          })
          answers.set(
            call.id,
            toolError(call.id, `This call to ${call.name} needs approval: send it on its own.`),
          )
          continue
        }
        const token = call.progressToken
        if (token !== undefined && acceptsEventStream(request.headers)) {
          const rule = verdict.rule
          // The client asked for progress and takes a stream: it hears that the call waits, at
          // each poll as the kit tells it, then gets the upstream's answer or the refusal.
          return eventStreamAnswer(
            request.signal,
            call.id,
            async (stream) => {
              let progress = 0
              const answer = await holdForApproval(identity, call, rule, stream.signal, () => {
                progress += 1
                stream.send({
                  jsonrpc: '2.0',
                  method: 'notifications/progress',
                  params: { progressToken: token, progress, message: waitingMessage(identity) },
                })
              })
              if (answer !== undefined) return stream.send(answer)
              await stream.relay(
                await forward(request, body, identity, calls, sessionId),
                progressFollowing(token, progress),
              )
            },
            onError,
          )
        }
        const answer = await holdForApproval(identity, call, verdict.rule, request.signal)
        if (answer !== undefined) answers.set(call.id, answer)
      }
      if (!alone || answers.size > 0) return answerHere(body, answers)
    }
    return forward(request, body, identity, calls, sessionId)
  }

  /**
   * Passes a request the rules allow on to the upstream, each call's decision recorded first,
   * and watches its answer.
   */
  async function forward(
    request: Request,
    body: RpcBody | undefined,
    identity: Identity,
    calls: readonly Call[],
    sessionId: string | null,
  ): Promise<Response> {
    // No action without its record: each allowed call's decision is written before the upstream
    // sees it. A decision that could not be written is not forwarded (nor is its batch), unless
    // the operator chose to log and go on.
    const unrecorded = new Map<unknown, RpcMessage>()
    for (const call of calls) {
      const recorded = await report(identity, call, {
        type: 'tool.allowed',
        decision: 'allow',
        reason: undefined,
        outcome: undefined,
      })
      if (!recorded && auditFailure === 'refuse') {
        unrecorded.set(call.id, {
          jsonrpc: '2.0',
          id: call.id,
          error: {
            code: INTERNAL_ERROR,
            message: `This call to ${call.name} was not run: it could not be recorded.`,
          },
        } as RpcMessage)
      }
    }
    if (body !== undefined && unrecorded.size > 0) return answerHere(body, unrecorded)

    const response = await options.upstream.handle(withoutCredentials(request, true), body?.value, {
      sub: identity.sub,
    })
    const opened = response.headers.get('mcp-session-id')
    if (opened !== null && !owners.has(opened)) {
      if (owners.size >= MAX_SESSIONS) {
        const oldest = owners.keys().next().value
        if (oldest !== undefined) owners.delete(oldest)
      }
      owners.set(opened, identity.sub)
    }
    if (request.method === 'DELETE' && sessionId !== null && response.ok) owners.delete(sessionId)
    return watch(response, identity, calls, toolListIds(body?.messages ?? []))
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
