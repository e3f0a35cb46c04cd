import { createMcpHonoApp } from '@modelcontextprotocol/hono'
import {
  type AuthInfo,
  type CallToolResult,
  createMcpHandler,
  type Icon,
  type Implementation,
  type InputRequiredResult,
  McpServer,
  type McpServerOptions,
  type RegisteredTool,
  type ScopeChallengeHandler,
  type ServerContext,
  type StandardSchemaWithJSON,
  type ToolAnnotations,
} from '@modelcontextprotocol/server'
import { Hono } from 'hono'
import { z } from 'zod'
import {
  type AuditFailure,
  type AuditHook,
  newCallId,
  reportToolCall,
  type ToolCallEvent,
  type ToolDecision,
} from './audit.js'
import { browserPageOr } from './browser-page.js'
import { cedarPolicyDeclaration, type JsonSchema } from './cedar-policy.js'
import { tokenRefusalResponse } from './challenge.js'
import type { Identity } from './identity.js'
import {
  metadataResponse,
  type ProtectedResourceMetadata,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
} from './metadata.js'
import { missingScopes, staticRefusal, type ToolRule } from './rules.js'
import { missingState, type StateStore, type UserState, userState } from './state.js'
import type { AccessTokenVerifier, Clock, TokenCheck } from './verify/types.js'
import { verifyAccessToken } from './verify/verify-access-token.js'

/** Options of {@link protectMcpServer}. */
export interface ProtectMcpServerOptions {
  /** This MCP server's canonical URL, e.g. `https://shop.example/mcp`: the `aud` of its tokens. */
  resource: string
  /** Issuers of the authorization servers clients should use (RFC 9728 `authorization_servers`). */
  authorizationServers: string[]
  /** Scopes to publish in the metadata; default: every scope a tool rule names. */
  scopesSupported?: string[]
  /** Scopes named in the 401 challenge, what a client asks for first; default `scopesSupported`. */
  challengeScopes?: string[]
  /** Checks access tokens: {@link jwtVerifier}, {@link introspectionVerifier} or your own. */
  verifier: AccessTokenVerifier
  /** Name and version the MCP server reports. */
  server: Implementation
  /** Passed to every `McpServer` the kit creates (capabilities, instructions, …). */
  serverOptions?: McpServerOptions
  /** Per-user durable state; handlers and policies get the caller's slice of it. */
  state?: StateStore
  /**
   * Receives every tool call: who, through which agent, which tool, decision and outcome. The
   * decision is recorded before the handler runs, the outcome after.
   */
  audit?: AuditHook
  /**
   * When the hook cannot record a call's decision: `refuse` (default) answers a tool error and
   * the handler does not run; `continue` tells `onError` and runs it anyway.
   */
  auditFailure?: AuditFailure
  /** Leave tools out of `tools/list` when the caller's roles or permissions rule them out. */
  hideForbiddenTools?: boolean
  /** RFC 9728 `resource_name`. */
  resourceName?: string
  /** RFC 9728 `resource_documentation`. */
  resourceDocumentation?: string
  /** Host header values accepted on the MCP endpoint (DNS rebinding guard); default the resource's host. */
  allowedHosts?: string[]
  /** Origin hostnames accepted on the MCP endpoint; default: the SDK's (localhost-only for local hosts). */
  allowedOrigins?: string[]
  /** How 2025-era clients are served: `stateless` (default, the SDK's fallback) or `reject`. */
  legacy?: 'stateless' | 'reject'
  /** Registers resources and prompts on each per-request `McpServer` with the plain SDK API. */
  setup?: (server: McpServer, context: { identity: Identity; state: UserState }) => void
  /** Unexpected errors: an unreachable issuer, a throwing policy or audit hook. */
  onError?: (error: Error) => void
  clock?: Clock
}

/** What a tool handler receives besides its arguments: the SDK context plus the caller. */
export type ProtectedToolContext = ServerContext & {
  /** The verified caller; the access token itself is never handed to tools. */
  readonly identity: Identity
  /** The caller's per-user state. */
  readonly state: UserState
}

/** Arguments a handler receives: the output type of the tool's input schema. */
export type ToolArguments<I extends StandardSchemaWithJSON | undefined> =
  I extends StandardSchemaWithJSON ? StandardSchemaWithJSON.InferOutput<I> : Record<string, never>

/** A tool handler behind the kit's checks. */
export type ProtectedToolHandler<I extends StandardSchemaWithJSON | undefined> = (
  args: ToolArguments<I>,
  context: ProtectedToolContext,
) => CallToolResult | InputRequiredResult | Promise<CallToolResult | InputRequiredResult>

/** The SDK's `registerTool` config, minus `scopeChallenge`, which the rule provides. */
export interface ProtectedToolConfig<
  I extends StandardSchemaWithJSON | undefined,
  O extends StandardSchemaWithJSON | undefined,
> {
  title?: string
  description?: string
  inputSchema?: I
  outputSchema?: O
  annotations?: ToolAnnotations
  icons?: Icon[]
  _meta?: Record<string, unknown>
}

/**
 * A tool guarded by a Cedar policy, as an action the policy store must know: the shape of
 * `ActionDeclaration` in `@deputy/server` (`deps.policies.declareActions(server.actions())`).
 */
export interface ToolActionDeclaration {
  /** The tool's name; its Cedar action is `Deputy::Action::"<resource>#<name>"`. */
  readonly name: string
  /** This MCP server's resource indicator. */
  readonly resource: string
  readonly description?: string
  /**
   * JSON Schema of the tool's arguments as its input schema parses them, the value both the
   * policy and the handler are given: `context.arguments`.
   */
  readonly arguments: JsonSchema
  /** JSON Schema (object) of the state keys the policy reads: `context.state`. */
  readonly state: JsonSchema
}

/** A protected MCP server: a Hono app to serve, and `tool()` to add tools with their rules. */
export interface ProtectedMcpServer {
  /** Serves the MCP endpoint at the resource's path and the RFC 9728 metadata documents. */
  readonly app: Hono
  /** `app.fetch`, for runtimes that take a fetch handler. */
  readonly fetch: (request: Request) => Promise<Response>
  /** Where the path-aware Protected Resource Metadata is served. */
  readonly resourceMetadataUrl: string
  /** Registers a tool with the rule that guards it (the SDK's `registerTool` plus a rule). */
  tool<
    I extends StandardSchemaWithJSON | undefined = undefined,
    O extends StandardSchemaWithJSON | undefined = undefined,
  >(
    name: string,
    rule: ToolRule,
    config: ProtectedToolConfig<I, O>,
    handler: ProtectedToolHandler<I>,
  ): void
  /**
   * The tools whose rule uses `cedarPolicy`, as actions to declare to the policy store, so
   * policies can name them and be checked against their arguments and state.
   */
  actions(): ToolActionDeclaration[]
  /** Ends in-flight exchanges. */
  close(): Promise<void>
}

interface ToolDefinition {
  readonly name: string
  readonly rule: ToolRule
  readonly config: ProtectedToolConfig<
    StandardSchemaWithJSON | undefined,
    StandardSchemaWithJSON | undefined
  >
  readonly handler: ProtectedToolHandler<StandardSchemaWithJSON | undefined>
}

/** What the gate learnt about one HTTP request, for the per-request server and the tool wrappers. */
interface RequestFacts {
  readonly identity: Identity
  readonly requests: readonly { id?: unknown; method?: unknown; params?: unknown }[]
}

interface Refusal {
  readonly decision: Exclude<ToolDecision, 'allow'>
  readonly reason: string
  readonly message: string
  /** The policies that decided, when the tool's policy named them. */
  readonly policies?: readonly string[]
}

/** A call the rule lets through, with the policies that allowed it when there were any. */
interface Allowed {
  readonly decision: 'allow'
  readonly policies?: readonly string[]
}

// RFC 6749 §3.3 scope-token.
const scopeToken = z
  .string()
  .regex(/^[\u0021\u0023-\u005B\u005D-\u007E]+$/, 'not an OAuth scope token')
  .refine((scope) => scope !== 'offline_access', {
    // MCP authorization "Refresh Tokens": offline_access belongs to the client and the AS, not to
    // the resource's metadata or challenges.
    message: 'offline_access is not a resource scope',
  })

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

// RFC 9728 §2 and RFC 8707 §2: an https URL without fragment; plain http only on loopback for
// development and tests.
const resourceUrl = z.url().refine(
  (value) => {
    const url = new URL(value)
    return (
      url.hash === '' &&
      (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)))
    )
  },
  { message: 'must be an https URL (http only on loopback) without a fragment' },
)

const optionsSchema = z
  .object({
    resource: resourceUrl,
    authorizationServers: z.array(resourceUrl).min(1),
    scopesSupported: z.array(scopeToken).optional(),
    challengeScopes: z.array(scopeToken).optional(),
    verifier: z.custom<AccessTokenVerifier>(
      (value) => typeof value === 'function',
      'must be a function',
    ),
    server: z.object({ name: z.string().min(1), version: z.string().min(1) }).loose(),
    serverOptions: z.record(z.string(), z.unknown()).optional(),
    state: z
      .custom<StateStore>(
        (value) =>
          typeof value === 'object' &&
          value !== null &&
          typeof (value as StateStore).read === 'function' &&
          typeof (value as StateStore).update === 'function',
        'must have read() and update()',
      )
      .optional(),
    audit: z
      .custom<AuditHook>((value) => typeof value === 'function', 'must be a function')
      .optional(),
    auditFailure: z.enum(['refuse', 'continue']).optional(),
    hideForbiddenTools: z.boolean().optional(),
    resourceName: z.string().min(1).optional(),
    resourceDocumentation: z.url().optional(),
    allowedHosts: z.array(z.string().min(1)).optional(),
    allowedOrigins: z.array(z.string().min(1)).optional(),
    legacy: z.enum(['stateless', 'reject']).optional(),
    setup: z.custom<() => void>((value) => typeof value === 'function').optional(),
    onError: z.custom<() => void>((value) => typeof value === 'function').optional(),
    clock: z.custom<Clock>((value) => typeof value === 'function').optional(),
  })
  .strict()

const ruleSchema = z
  .object({
    scopes: z.array(scopeToken).optional(),
    roles: z.array(z.string().min(1)).optional(),
    permissions: z.array(z.string().min(1)).optional(),
    policy: z.custom<() => void>((value) => typeof value === 'function').optional(),
  })
  .strict()

function toolError(message: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: message }] }
}

function jsonRpcRequests(body: unknown): RequestFacts['requests'] {
  const messages = Array.isArray(body) ? body : [body]
  return messages.filter(
    (message): message is { id?: unknown; method?: unknown; params?: unknown } =>
      message !== null && typeof message === 'object' && 'method' in message,
  )
}

// The raw token stays in the gate: the SDK, tools and `ctx.http.req` see a request without it, so
// no handler can pass it on (MCP authorization "Token Handling", "Access Token Privilege Restriction").
// A fresh Request from the parts the SDK and handlers read (URL, method, headers, body stream,
// abort signal): about a quarter of the CPU of `new Request(request, { headers })`, which copies
// every internal field and re-wraps the body.
function withoutCredentials(request: Request): Request {
  const headers = new Headers(request.headers)
  headers.delete('authorization')
  const method = request.method
  const body = method === 'GET' || method === 'HEAD' ? null : request.body
  return new Request(request.url, {
    method,
    headers,
    signal: request.signal,
    ...(body !== null && { body, duplex: 'half' }),
  } as RequestInit)
}

/**
 * Protects an MCP server built on the official TypeScript SDK: publishes RFC 9728 metadata,
 * challenges unauthenticated requests, verifies access tokens for exactly this resource, enforces
 * each tool's rule before its handler runs, hands handlers the verified identity and per-user
 * state, and reports every tool call to the audit hook.
 */
export function protectMcpServer(options: ProtectMcpServerOptions): ProtectedMcpServer {
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success) throw new TypeError(`protectMcpServer: ${z.prettifyError(parsed.error)}`)
  const resource = new URL(options.resource)
  const resourceId = options.resource
  const metadataUrl = protectedResourceMetadataUrl(resource)
  const clock = options.clock ?? (() => new Date())
  const onError = options.onError ?? ((error: Error) => console.error('[@deputy/mcp]', error))
  const tools = new Map<string, ToolDefinition>()
  // Keyed by the AuthInfo object the gate hands the SDK, which passes it through untouched.
  const facts = new WeakMap<AuthInfo, RequestFacts>()

  const scopesSupported = (): string[] =>
    options.scopesSupported ?? [
      ...new Set([...tools.values()].flatMap((tool) => tool.rule.scopes ?? [])),
    ]

  const metadata = (): ProtectedResourceMetadata => ({
    resource: resourceId,
    authorization_servers: [...options.authorizationServers],
    ...(scopesSupported().length > 0 && { scopes_supported: scopesSupported() }),
    bearer_methods_supported: ['header'],
    ...(options.resourceName !== undefined && { resource_name: options.resourceName }),
    ...(options.resourceDocumentation !== undefined && {
      resource_documentation: options.resourceDocumentation,
    }),
  })

  const stateFor = (identity: Identity): UserState =>
    options.state === undefined
      ? missingState()
      : userState(options.state, { resource: resourceId, sub: identity.sub })

  const auditFailure: AuditFailure = options.auditFailure ?? 'refuse'

  function report(
    identity: Identity,
    tool: string,
    args: unknown,
    callId: string,
    fields: Pick<ToolCallEvent, 'type' | 'decision' | 'reason' | 'outcome' | 'policies'>,
  ): Promise<boolean> {
    return reportToolCall(options.audit, onError, {
      callId,
      at: clock(),
      resource: resourceId,
      identity,
      tool,
      args,
      fields,
    })
  }

  async function evaluate(
    tool: ToolDefinition,
    identity: Identity,
    args: unknown,
    state: UserState,
  ): Promise<Refusal | Allowed> {
    const { rule, name } = tool
    // Normally answered earlier with a 403 by the scope challenge; checked again so a handler
    // never runs short of scope, whatever path the request took.
    if (missingScopes(identity, rule.scopes).length > 0) {
      return {
        decision: 'insufficient_scope',
        reason: 'scope',
        message: `Calling ${name} needs the scopes: ${(rule.scopes ?? []).join(' ')}.`,
      }
    }
    const refusal = staticRefusal(rule, identity)
    if (refusal === 'role') {
      return {
        decision: 'deny',
        reason: 'role',
        message: `You do not have a role that may call ${name}.`,
      }
    }
    if (refusal === 'permission') {
      return {
        decision: 'deny',
        reason: 'permission',
        message: `You do not have permission to call ${name}.`,
      }
    }
    if (rule.policy === undefined) return { decision: 'allow' }
    let decision: Awaited<ReturnType<NonNullable<ToolRule['policy']>>>
    try {
      decision = await rule.policy({
        resource: resourceId,
        identity,
        tool: name,
        arguments: args,
        state,
      })
    } catch (error) {
      // A broken policy refuses (fail closed) without telling the caller why.
      onError(error instanceof Error ? error : new Error(String(error)))
      return {
        decision: 'deny',
        reason: 'policy_error',
        message: `This call to ${name} was refused.`,
      }
    }
    // Only what is plainly a list of ids reaches the audit event.
    const policies = Array.isArray(decision?.policies)
      ? { policies: decision.policies.filter((id): id is string => typeof id === 'string') }
      : {}
    switch (decision?.decision) {
      case 'allow':
        return { decision: 'allow', ...policies }
      case 'deny':
        return {
          decision: 'deny',
          reason: 'policy',
          message: decision.message ?? `This call to ${name} was refused by policy.`,
          ...policies,
        }
      case 'needs_approval':
        // Approvals come later: until then the call is refused, saying what it waits for.
        return {
          decision: 'needs_approval',
          reason: 'approval',
          message:
            decision.message ??
            `This call to ${name} needs the approval of the person you act for.`,
          ...policies,
        }
      default:
        onError(new Error(`policy of ${name} returned no decision`))
        return {
          decision: 'deny',
          reason: 'policy_error',
          message: `This call to ${name} was refused.`,
        }
    }
  }

  async function run(
    tool: ToolDefinition,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult | InputRequiredResult> {
    const authInfo = ctx.http?.authInfo
    const known = authInfo === undefined ? undefined : facts.get(authInfo)
    // Only the gate creates AuthInfo objects the map knows; anything else is refused.
    if (known === undefined) return toolError('This tool needs an authenticated caller.')
    const { identity } = known
    const raw = known.requests.find(
      (request) => request.method === 'tools/call' && request.id === ctx.mcpReq.id,
    )?.params as { arguments?: unknown } | undefined
    const auditedArgs = raw?.arguments ?? args
    const callId = newCallId()
    const state = stateFor(identity)
    const verdict = await evaluate(tool, identity, args, state)
    if (verdict.decision !== 'allow') {
      // Recorded before it is answered; a refusal stands whether or not the record was written.
      await report(identity, tool.name, auditedArgs, callId, {
        type: 'tool.refused',
        decision: verdict.decision,
        reason: verdict.reason,
        outcome: 'refused',
        ...(verdict.policies !== undefined && { policies: verdict.policies }),
      })
      return toolError(verdict.message)
    }
    const allowedBy = verdict.policies !== undefined ? { policies: verdict.policies } : {}
    // No action without its record: the decision is written before the handler runs, and a
    // decision that could not be written is not acted on unless the operator said otherwise.
    const recorded = await report(identity, tool.name, auditedArgs, callId, {
      type: 'tool.allowed',
      decision: 'allow',
      reason: undefined,
      outcome: undefined,
      ...allowedBy,
    })
    if (!recorded && auditFailure === 'refuse') {
      return toolError(`This call to ${tool.name} was not run: it could not be recorded.`)
    }
    let result: CallToolResult | InputRequiredResult
    try {
      result = await tool.handler(args as never, { ...ctx, identity, state })
    } catch (error) {
      await report(identity, tool.name, auditedArgs, callId, {
        type: 'tool.called',
        decision: 'allow',
        reason: undefined,
        outcome: 'error',
        ...allowedBy,
      })
      throw error
    }
    // The call happened: a failing outcome record goes to onError, the result to the caller.
    await report(identity, tool.name, auditedArgs, callId, {
      type: 'tool.called',
      decision: 'allow',
      reason: undefined,
      outcome: (result as CallToolResult).isError === true ? 'error' : 'success',
      ...allowedBy,
    })
    return result
  }

  // The SDK answers a scope challenge with 403 insufficient_scope before dispatch, on both the
  // 2026-07-28 path and the 2025 fallback (MCP authorization "Scope Challenge Handling").
  function scopeChallenge(tool: ToolDefinition): ScopeChallengeHandler | undefined {
    const required = tool.rule.scopes ?? []
    if (required.length === 0) return undefined
    return async ({ request, authInfo }) => {
      const known = authInfo === undefined ? undefined : facts.get(authInfo)
      if (known === undefined || missingScopes(known.identity, required).length === 0)
        return undefined
      const params = request.params as { arguments?: unknown } | undefined
      await report(known.identity, tool.name, params?.arguments, newCallId(), {
        type: 'tool.refused',
        decision: 'insufficient_scope',
        reason: 'scope',
        outcome: 'refused',
      })
      // Every scope the tool needs, not only the missing ones: the client asks for the union.
      return {
        scopes: [...required] as [string, ...string[]],
        errorDescription: 'The access token lacks a scope this tool needs',
      }
    }
  }

  const handler = createMcpHandler(
    ({ authInfo }) => {
      const known = authInfo === undefined ? undefined : facts.get(authInfo)
      if (known === undefined)
        throw new Error('MCP request reached the server without a verified caller')
      const server = new McpServer(options.server, options.serverOptions)
      const listsTools =
        known.requests.some((request) => request.method === 'tools/list') &&
        !known.requests.some((request) => request.method === 'tools/call')
      for (const tool of tools.values()) {
        const challenge = scopeChallenge(tool)
        const callback = tool.config.inputSchema
          ? (args: Record<string, unknown>, ctx: ServerContext) => run(tool, args, ctx)
          : (ctx: ServerContext) => run(tool, {}, ctx)
        const registered = (
          server.registerTool as unknown as (
            name: string,
            config: object,
            cb: typeof callback,
          ) => RegisteredTool
        )(
          tool.name,
          { ...tool.config, ...(challenge !== undefined && { scopeChallenge: challenge }) },
          callback,
        )
        // Hidden only from the listing: a direct call still meets the rule and is refused with a
        // clear message (and audited), rather than looking like an unknown tool.
        if (
          options.hideForbiddenTools === true &&
          listsTools &&
          staticRefusal(tool.rule, known.identity)
        ) {
          registered.disable()
        }
      }
      options.setup?.(server, { identity: known.identity, state: stateFor(known.identity) })
      return server
    },
    {
      ...(options.legacy !== undefined && { legacy: options.legacy }),
      onerror: (error) => onError(error),
    },
  )

  const challengeScopes = (): string[] => options.challengeScopes ?? scopesSupported()

  function refuse(check: Extract<TokenCheck, { ok: false }>): Response {
    return tokenRefusalResponse(check, {
      resourceMetadata: metadataUrl,
      scope: challengeScopes(),
      onError,
    })
  }

  const app = new Hono()
  for (const path of new Set([
    protectedResourceMetadataPath(resource),
    '/.well-known/oauth-protected-resource',
  ])) {
    // RFC 9728 §3: path-aware location first, the root one for clients that only try that.
    app.all(path, (c) => metadataResponse(c.req.raw, metadata()))
  }
  const hostname = resource.hostname
  const mcp = createMcpHonoApp({
    host: hostname.replace(/^\[(.*)\]$/, '$1'),
    allowedHosts: options.allowedHosts ?? [hostname],
    ...(options.allowedOrigins !== undefined && { allowedOrigins: options.allowedOrigins }),
  })
  mcp.all('/', async (c) => {
    const check = await verifyAccessToken(c.req.header('authorization'), options.verifier)
    if (!check.ok)
      return browserPageOr(c.req.raw, check, refuse(check), () => ({
        name: options.resourceName ?? options.server.name,
        metadata: metadata(),
        metadataUrl,
      }))
    const parsedBody: unknown = (c.get as (key: string) => unknown)('parsedBody')
    const { identity } = check
    const authInfo: AuthInfo = {
      token: '',
      clientId: identity.clientId ?? '',
      scopes: [...identity.scopes],
      ...(identity.expiresAt !== undefined && { expiresAt: identity.expiresAt }),
      resource,
      resourceMetadataUrl: metadataUrl,
      extra: { sub: identity.sub },
    }
    facts.set(authInfo, { identity, requests: jsonRpcRequests(parsedBody) })
    return handler.fetch(withoutCredentials(c.req.raw), {
      authInfo,
      ...(parsedBody !== undefined && { parsedBody }),
    })
  })
  app.route(resource.pathname.replace(/\/+$/, '') || '/', mcp)

  return {
    app,
    fetch: (request) => Promise.resolve(app.fetch(request)),
    resourceMetadataUrl: metadataUrl,
    tool(name, rule, config, toolHandler) {
      if (typeof name !== 'string' || name.length === 0)
        throw new TypeError('tool: name is required')
      if (tools.has(name)) throw new TypeError(`tool: ${name} is already registered`)
      const checked = ruleSchema.safeParse(rule)
      if (!checked.success) throw new TypeError(`tool ${name}: ${z.prettifyError(checked.error)}`)
      const outside = (rule.scopes ?? []).filter(
        (scope) => !(options.scopesSupported ?? [scope]).includes(scope),
      )
      if (outside.length > 0) {
        // The metadata must name every scope a tool can challenge for, or clients cannot ask for it.
        throw new TypeError(`tool ${name}: scopes not in scopesSupported: ${outside.join(' ')}`)
      }
      if (cedarPolicyDeclaration(rule.policy) !== undefined) {
        try {
          parsedJsonSchema(config.inputSchema)
        } catch (error) {
          // Cedar types `context.arguments` from this schema; a value it cannot describe could
          // not be decided on the value the handler gets (issue 9 §4).
          throw new TypeError(
            `tool ${name}: a Cedar policy is decided on the parsed arguments, which JSON Schema must describe: ${error instanceof Error ? error.message : String(error)}`,
          )
        }
      }
      tools.set(name, {
        name,
        rule,
        config: config as ToolDefinition['config'],
        handler: toolHandler as ToolDefinition['handler'],
      })
    },
    actions: () =>
      [...tools.values()].flatMap((tool) => {
        const declaration = cedarPolicyDeclaration(tool.rule.policy)
        if (declaration === undefined) return []
        return [
          {
            name: tool.name,
            resource: resourceId,
            ...(tool.config.description !== undefined && {
              description: tool.config.description,
            }),
            arguments: parsedJsonSchema(tool.config.inputSchema),
            state: declaration.state,
          },
        ]
      }),
    close: () => handler.close(),
  }
}

/**
 * The JSON Schema of a tool's arguments as its input schema parses them (the schema's output):
 * what the SDK hands the rule's policy and the handler. It differs from what `tools/list`
 * publishes (the input) where the schema fills defaults (then required) or transforms (then
 * this throws). A tool without a schema takes an empty object (MCP requires an object schema).
 */
function parsedJsonSchema(schema: StandardSchemaWithJSON | undefined): JsonSchema {
  if (schema === undefined) return { type: 'object', properties: {} }
  const json = schema['~standard'].jsonSchema.output({ target: 'draft-2020-12' })
  return json.type === undefined ? { type: 'object', ...json } : json
}
