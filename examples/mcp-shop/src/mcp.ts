import {
  type AccessTokenVerifier,
  type AuditHook,
  allow,
  cedarPolicy,
  deny,
  type Identity,
  type JsonSchema,
  type PolicyDecisionPoint,
  type ProtectedMcpServer,
  protectMcpServer,
  type StateStore,
  type ToolConnectionsOptions,
  type ToolPolicy,
  type ToolRule,
  type UserState,
} from '@deputy/mcp'
import {
  DEMO_MODE_KEY,
  DEMO_MODES,
  MESSAGES,
  SHOP_ADMIN_PERMISSION,
  SHOP_SCOPES,
  SHOP_TOOLS,
  type ShopContext,
} from './shop.js'
import type { OrderBook } from './storage.js'

/** Options of {@link createShopMcpServer}. */
export interface ShopMcpServerOptions {
  /** The shop's MCP endpoint, e.g. `https://deputy.example/mcp`: the `aud` of its tokens. */
  resource: string
  /** The authorization server clients sign in with (Deputy's issuer). */
  issuer: string
  /** Checks access tokens, e.g. `jwtVerifier({ issuer, audience: resource, jwksUri })`. */
  verifier: AccessTokenVerifier
  /** Per-person durable state (Deputy's SQL store in the demo): the ban lives here. */
  stateStore: StateStore
  orderBook: OrderBook
  /**
   * Decides each tool's rule with Cedar policies (Deputy's engine, `deps.policy`): the ban and
   * the admin check are then the policies of `policies/mcp-shop.cedar`, which an operator can
   * edit. Without it the same rules are code, with the same messages.
   */
  policy?: PolicyDecisionPoint
  /** Receives every tool call; the demo appends them to Deputy's audit chain. */
  audit?: AuditHook
  /** Unexpected errors (an unreachable JWKS, a throwing policy or audit hook). */
  onError?: (error: Error) => void
  /**
   * A connected account the shop may use as the person (issue 12): adds `whoAmIUpstream`, which
   * asks the provider's API who the person is there with the account they connected in Deputy.
   * Without it the shop has the seed's seven tools only.
   */
  upstream?: ShopUpstreamOptions
}

/** The provider the shop reaches through Deputy's vault, and the API it calls there. */
export interface ShopUpstreamOptions {
  /** The MCP server's client at Deputy, allowed for the provider (`deputy providers allow-client`). */
  connections: ToolConnectionsOptions
  /** The provider's name in Deputy (`deputy providers list`). */
  provider: string
  /** The API's "who am I" URL, e.g. `https://api.github.com/user`. */
  whoAmIUrl: string
  /** Scopes the call needs at the provider; default the connection's. */
  scope?: string
}

/** A policy that refuses with the seed's words while the person is banned. */
function notBanned(message: string): ToolPolicy {
  return async ({ state }) =>
    (await state.get(DEMO_MODE_KEY)) === 'banned' ? deny(message) : allow()
}

/**
 * `permissions: [...]` in a rule would refuse with the kit's generic sentence; the seed answers
 * with its own, so the permission is checked by a policy that says it.
 */
function hasPermission(permission: string, message: string): ToolPolicy {
  return ({ identity }) => (identity.permissions.includes(permission) ? allow() : deny(message))
}

/** Who may call each tool, beside the tool's name: scopes, the admin permission, the ban (as code). */
export const SHOP_RULES: Record<string, ToolRule> = {
  setDemoMode: { scopes: [SHOP_SCOPES.admin] },
  clearDemoMode: { scopes: [SHOP_SCOPES.admin] },
  getUserInfo: {
    scopes: [SHOP_SCOPES.admin],
    policy: hasPermission(SHOP_ADMIN_PERMISSION, MESSAGES.notAdmin),
  },
  // Every ordering path checks the ban before its handler runs (the handlers check it too).
  listMcpShopInventory: {
    scopes: [SHOP_SCOPES.read],
    policy: notBanned(MESSAGES.bannedInventory),
  },
  buyMcpShopItem: { scopes: [SHOP_SCOPES.order], policy: notBanned(MESSAGES.bannedOrder) },
  listMcpShopOrders: { scopes: [SHOP_SCOPES.read] },
  prettyPlease: { scopes: [SHOP_SCOPES.order] },
}

/** The per-person state the shop's Cedar policies may read: `context.state.demoMode`. */
export const SHOP_POLICY_STATE: Record<string, JsonSchema> = {
  [DEMO_MODE_KEY]: { type: 'string', enum: [...DEMO_MODES] },
}

/**
 * The shop's rules: with a policy decision point, every tool's scopes stay (they are the OAuth
 * layer: a 403 lets a client step up) and the rest is decided by Cedar policies; without one,
 * {@link SHOP_RULES}.
 */
export function shopRules(pdp?: PolicyDecisionPoint): Record<string, ToolRule> {
  if (pdp === undefined) return SHOP_RULES
  // One policy function for all seven: each call names its tool, so each is its own action.
  const policy = cedarPolicy(pdp, { state: SHOP_POLICY_STATE })
  return Object.fromEntries(
    Object.entries(SHOP_RULES).map(([name, rule]) => [
      name,
      { ...(rule.scopes !== undefined && { scopes: rule.scopes }), policy },
    ]),
  )
}

/** Where the shop's Cedar policies are: `policies/mcp-shop.cedar` of this package. */
export const SHOP_POLICIES_URL = new URL('../policies/mcp-shop.cedar', import.meta.url)

function shopContext(identity: Identity, state: UserState, orders: OrderBook): ShopContext {
  return {
    caller: identity,
    state: { read: (key) => state.get(key), update: (key, fn) => state.update(key, fn) },
    orders,
  }
}

/**
 * The mcp.shop MCP server behind `@deputy/mcp`: the seed's seven tools, each with its rule, the
 * verified caller and their durable state handed to the plain tool functions of `shop.ts`.
 */
export function createShopMcpServer(options: ShopMcpServerOptions): ProtectedMcpServer {
  const server = protectMcpServer({
    resource: options.resource,
    authorizationServers: [options.issuer],
    scopesSupported: Object.values(SHOP_SCOPES),
    verifier: options.verifier,
    server: { name: 'mcp-shop', version: '0.1.0' },
    state: options.stateStore,
    resourceName: 'mcp.shop',
    ...(options.audit !== undefined && { audit: options.audit }),
    ...(options.onError !== undefined && { onError: options.onError }),
    ...(options.upstream !== undefined && { connections: options.upstream.connections }),
  })
  const rules = shopRules(options.policy)
  for (const tool of SHOP_TOOLS) {
    const rule = rules[tool.name]
    if (rule === undefined) throw new Error(`no rule for ${tool.name}`)
    server.tool(
      tool.name,
      rule,
      { description: tool.description, inputSchema: tool.inputSchema },
      async (args, { identity, state }) => {
        const result = await tool.run(shopContext(identity, state, options.orderBook), args)
        return {
          content: [{ type: 'text', text: result.text }],
          ...(result.isError === true && { isError: true }),
        }
      },
    )
  }
  if (options.upstream !== undefined) addWhoAmIUpstream(server, options.upstream)
  return server
}

/**
 * `whoAmIUpstream`: the provider's API, called as the person with the access token of the
 * account they connected (the refresh token stays in Deputy; neither reaches the agent). A
 * person who has not connected it gets the connect link from the kit.
 */
function addWhoAmIUpstream(server: ProtectedMcpServer, upstream: ShopUpstreamOptions): void {
  server.tool(
    'whoAmIUpstream',
    { scopes: [SHOP_SCOPES.read] },
    { description: `Who you are at ${upstream.provider}, asked with the account you connected` },
    async (_args, { connections }) => {
      const token = await connections.token(
        upstream.provider,
        upstream.scope !== undefined ? { scope: upstream.scope } : {},
      )
      const answer = await fetch(upstream.whoAmIUrl, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      })
      if (!answer.ok) {
        return {
          isError: true,
          content: [{ type: 'text', text: `${upstream.provider} answered ${answer.status}.` }],
        }
      }
      return { content: [{ type: 'text', text: await answer.text() }] }
    },
  )
}
