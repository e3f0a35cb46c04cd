import {
  type AccessTokenVerifier,
  type AuditHook,
  cedarPolicy,
  type JsonSchema,
  type PolicyDecisionPoint,
  type ProtectedMcpServer,
  protectMcpServer,
  type StateStore,
  type ToolApprovalOptions,
  type ToolRule,
  type UserState,
} from '@deputy/mcp'
import {
  LIMIT_KEY,
  TRADING_SCOPES,
  TRADING_TOOLS,
  type TradingContext,
  type TradingState,
} from './trading.js'

/** Options of {@link createTradingMcpServer}. */
export interface TradingMcpServerOptions {
  /** The server's MCP endpoint, e.g. `https://deputy.example/trading/mcp`: the `aud` of its tokens. */
  resource: string
  /** The authorization server clients sign in with (Deputy's issuer). */
  issuer: string
  /** Checks access tokens, e.g. `jwtVerifier({ issuer, audience: resource, jwksUri })`. */
  verifier: AccessTokenVerifier
  /** Per-person durable state (Deputy's SQL store in the demo): portfolio, cash and limit. */
  stateStore: StateStore
  /**
   * Decides every tool call with the Cedar policies of `policies/trading.cedar` (Deputy's engine,
   * `deps.policy`): which buys wait for the person's approval is policy an operator edits, not
   * code, so there is no trading server without one.
   */
  policy: PolicyDecisionPoint
  /**
   * Where a buy the policies hold for approval asks the person (the server as a confidential CIBA
   * client of Deputy): it waits for their decision with progress notifications, answers pending
   * with the page where they decide, and runs once with exactly the approved arguments. Without
   * it, a held buy is refused as needing approval.
   */
  approvals?: ToolApprovalOptions
  /** Receives every tool call; the demo appends them to Deputy's audit chain. */
  audit?: AuditHook
  /** Unexpected errors (an unreachable JWKS, a throwing policy or audit hook). */
  onError?: (error: Error) => void
  /** The time of a trade; default the system clock. */
  now?: () => Date
}

/**
 * The per-person state the trading policies may read: `context.state.limitCents`, the person's
 * trading limit in cents.
 */
export const TRADING_POLICY_STATE: Record<string, JsonSchema> = {
  [LIMIT_KEY]: { type: 'integer', minimum: 0 },
}

/** Where the trading server's Cedar policies are: `policies/trading.cedar` of this package. */
export const TRADING_POLICIES_URL = new URL('../policies/trading.cedar', import.meta.url)

function tradingState(state: UserState): TradingState {
  return { read: (key) => state.get(key), update: (key, fn) => state.update(key, fn) }
}

/**
 * The trading MCP server behind `@deputy/mcp`: the five tools, each with its scope, every call
 * decided by Cedar (one `cedarPolicy` for all: each call names its tool, its own action), the
 * person's durable state handed to the plain tool functions of `trading.ts`.
 */
export function createTradingMcpServer(options: TradingMcpServerOptions): ProtectedMcpServer {
  if (typeof options.policy?.authorizeToolCall !== 'function')
    throw new TypeError('createTradingMcpServer: a policy decision point is required')
  const server = protectMcpServer({
    resource: options.resource,
    authorizationServers: [options.issuer],
    scopesSupported: Object.values(TRADING_SCOPES),
    verifier: options.verifier,
    server: { name: 'trading', version: '0.1.0' },
    state: options.stateStore,
    resourceName: 'Trading (demo)',
    ...(options.approvals !== undefined && { approvals: options.approvals }),
    ...(options.audit !== undefined && { audit: options.audit }),
    ...(options.onError !== undefined && { onError: options.onError }),
  })
  const policy = cedarPolicy(options.policy, { state: TRADING_POLICY_STATE })
  const now = options.now ?? (() => new Date())
  for (const tool of TRADING_TOOLS) {
    const rule: ToolRule = {
      scopes: tool.scopes,
      policy,
      // Which calls wait is the policies' (a Cedar needs_approval), never this rule's own `when`;
      // the rule only words the request the person sees beside the call's arguments.
      ...(options.approvals !== undefined &&
        tool.bindingMessage !== undefined && {
          approval: {
            when: () => false,
            bindingMessage: ({ arguments: args }) => tool.bindingMessage?.(args as never) ?? '',
          },
        }),
    }
    server.tool(
      tool.name,
      rule,
      { description: tool.description, inputSchema: tool.inputSchema },
      async (args, { state }) => {
        const ctx: TradingContext = { state: tradingState(state), now }
        const result = await tool.run(ctx, args as never)
        return {
          content: [{ type: 'text', text: result.text }],
          ...(result.isError === true && { isError: true }),
        }
      },
    )
  }
  return server
}
