import {
  createMcpHandler,
  McpServer,
  type RegisteredTool,
  type ServerContext,
  type StandardSchemaWithJSON,
} from '@modelcontextprotocol/server'
import { Hono } from 'hono'
import { cibaClient } from './approval/ciba-client.js'
import type { AuditFailure } from './audit.js'
import { connectionExchange } from './connections/exchange-client.js'
import { connectionsBroker } from './connections/tool-connections.js'
import { deputyClient } from './deputy-client.js'
import { mcpEntryApp } from './http-entry.js'
import { httpGate, verifiedCallers } from './http-gate.js'
import type { Identity } from './identity.js'
import {
  metadataResponse,
  type ProtectedResourceMetadata,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
} from './metadata.js'
import {
  checkProtectOptions,
  checkToolRule,
  type ProtectMcpServerOptions,
} from './protect-options.js'
import { staticRefusal, type ToolRule } from './rules.js'
import { convertedOnce } from './schema-memo.js'
import { missingState, type UserState, userState } from './state.js'
import { toolCallRunner } from './tool-call.js'
import {
  checkCedarArguments,
  type ProtectedToolConfig,
  type ProtectedToolHandler,
  type ToolActionDeclaration,
  type ToolDefinition,
  toolActionDeclaration,
} from './tool-definition.js'

export type {
  ProtectMcpServerOptions,
  ToolApprovalOptions,
  ToolConnectionsOptions,
} from './protect-options.js'
export type {
  ProtectedToolConfig,
  ProtectedToolContext,
  ProtectedToolHandler,
  ToolActionDeclaration,
  ToolArguments,
} from './tool-definition.js'

/** How long a call waits for the person's approval unless `approvals.waitSeconds` says otherwise. */
const DEFAULT_APPROVAL_WAIT_SECONDS = 30
/** How many connected accounts' tokens are kept unless `connections.maxCachedTokens` says otherwise. */
const DEFAULT_MAX_CACHED_TOKENS = 1000

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

/**
 * Protects an MCP server built on the official TypeScript SDK: publishes RFC 9728 metadata,
 * challenges unauthenticated requests, verifies access tokens for exactly this resource, enforces
 * each tool's rule before its handler runs, hands handlers the verified identity and per-user
 * state, and reports every tool call to the audit hook.
 */
export function protectMcpServer(options: ProtectMcpServerOptions): ProtectedMcpServer {
  checkProtectOptions(options)
  const resource = new URL(options.resource)
  const resourceId = options.resource
  const metadataUrl = protectedResourceMetadataUrl(resource)
  const clock = options.clock ?? (() => new Date())
  const onError = options.onError ?? ((error: Error) => console.error('[@deputy/mcp]', error))
  const tools = new Map<string, ToolDefinition>()
  /** Each tool's config as the SDK gets it per request: its schemas converted once. */
  const sdkConfigs = new Map<string, ToolDefinition['config']>()
  const callers = verifiedCallers()

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
  const approvals = options.approvals
  const connections = options.connections
  const runner = toolCallRunner({
    resource: resourceId,
    callers,
    stateFor,
    audit: options.audit,
    auditFailure,
    onError,
    clock,
    ...(approvals !== undefined && {
      approvals: {
        resource: resourceId,
        ciba: cibaClient(approvals),
        clientId: approvals.clientId,
        verifier: options.verifier,
        waitSeconds: approvals.waitSeconds ?? DEFAULT_APPROVAL_WAIT_SECONDS,
        expirySeconds: approvals.expirySeconds,
        // CIBA §7.1: the request must contain openid.
        scope: [...new Set(['openid', ...(approvals.scopes ?? [])])].join(' '),
        now: () => clock().getTime(),
      },
    }),
    ...(connections !== undefined && {
      connections: connectionsBroker({
        exchange: connectionExchange(deputyClient(connections), () => clock().getTime()),
        maxCached: connections.maxCachedTokens ?? DEFAULT_MAX_CACHED_TOKENS,
        now: () => clock().getTime(),
      }),
    }),
  })

  // One McpServer per HTTP request, with every tool wrapped by the runner.
  const handler = createMcpHandler(
    ({ authInfo }) => {
      const known = callers.get(authInfo)
      if (known === undefined)
        throw new Error('MCP request reached the server without a verified caller')
      const server = new McpServer(options.server, options.serverOptions)
      const listsTools =
        known.requests.some((request) => request.method === 'tools/list') &&
        !known.requests.some((request) => request.method === 'tools/call')
      for (const tool of tools.values()) {
        const challenge = runner.scopeChallenge(tool)
        const callback = tool.config.inputSchema
          ? (args: Record<string, unknown>, ctx: ServerContext) => runner.run(tool, args, ctx)
          : (ctx: ServerContext) => runner.run(tool, {}, ctx)
        const registered = (
          server.registerTool as unknown as (
            name: string,
            config: object,
            cb: typeof callback,
          ) => RegisteredTool
        )(
          tool.name,
          {
            ...(sdkConfigs.get(tool.name) ?? tool.config),
            ...(challenge !== undefined && { scopeChallenge: challenge }),
          },
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

  const gate = httpGate({
    verifier: options.verifier,
    resource,
    resourceMetadataUrl: metadataUrl,
    challengeScopes: () => options.challengeScopes ?? scopesSupported(),
    callers,
    handle: (request, handlerOptions) => handler.fetch(request, handlerOptions),
    onError,
    browserPage: () => ({
      name: options.resourceName ?? options.server.name,
      metadata: metadata(),
      metadataUrl,
    }),
  })

  const app = new Hono()
  for (const path of new Set([
    protectedResourceMetadataPath(resource),
    '/.well-known/oauth-protected-resource',
  ])) {
    // RFC 9728 §3: path-aware location first, the root one for clients that only try that.
    app.all(path, (c) => metadataResponse(c.req.raw, metadata()))
  }
  const hostname = resource.hostname
  const mcp = mcpEntryApp(
    {
      host: hostname.replace(/^\[(.*)\]$/, '$1'),
      allowedHosts: options.allowedHosts ?? [hostname],
      ...(options.allowedOrigins !== undefined && { allowedOrigins: options.allowedOrigins }),
    },
    gate,
  )
  app.route(resource.pathname.replace(/\/+$/, '') || '/', mcp)

  return {
    app,
    fetch: (request) => Promise.resolve(app.fetch(request)),
    resourceMetadataUrl: metadataUrl,
    tool(name, rule, config, toolHandler) {
      if (typeof name !== 'string' || name.length === 0)
        throw new TypeError('tool: name is required')
      if (tools.has(name)) throw new TypeError(`tool: ${name} is already registered`)
      checkToolRule(name, rule, options)
      checkCedarArguments(name, rule, config.inputSchema)
      tools.set(name, {
        name,
        rule,
        config: config as ToolDefinition['config'],
        handler: toolHandler as ToolDefinition['handler'],
      })
      const sdkConfig = { ...config } as ToolDefinition['config']
      if (config.inputSchema !== undefined)
        sdkConfig.inputSchema = convertedOnce(config.inputSchema)
      if (config.outputSchema !== undefined)
        sdkConfig.outputSchema = convertedOnce(config.outputSchema)
      sdkConfigs.set(name, sdkConfig)
    },
    actions: () => [...tools.values()].flatMap((tool) => toolActionDeclaration(tool, resourceId)),
    close: () => handler.close(),
  }
}
