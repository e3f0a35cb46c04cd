import { z } from 'zod'
import type { OrderBook, ShopState } from './storage.js'

// The mcp.shop demo (workos/mcp-shop-cloudflare:src/mcp-server.ts), tool for tool and message for
// message, with three of its defects fixed: the ban is kept per person (`sub`) in durable state
// rather than per MCP session, clearDemoMode really clears it, and getUserInfo never echoes a token.

/** Who is calling: the verified identity the MCP kit hands a tool handler. */
export interface ShopCaller {
  readonly sub: string
  readonly clientId: string | undefined
  readonly scopes: readonly string[]
  readonly roles: readonly string[]
  readonly permissions: readonly string[]
  /** Every claim of the verified access token (never the token itself). */
  readonly claims: Readonly<Record<string, unknown>>
}

/** What a tool handler needs: the caller, their own state at the shop, and the shop's orders. */
export interface ShopContext {
  caller: ShopCaller
  state: ShopState
  orders: OrderBook
}

/** A tool's answer: text for the model, optional structured data, and whether it is a refusal. */
export interface ShopResult {
  text: string
  isError?: boolean
  data?: Record<string, unknown>
}

/** The permission that opens getUserInfo, as in the seed. */
export const SHOP_ADMIN_PERMISSION = 'shop:admin'
export const TSHIRT_SIZES = ['S', 'M', 'L', 'XL', 'XXL'] as const
export type TshirtSize = (typeof TSHIRT_SIZES)[number]
export const DEMO_MODES = ['normal', 'banned'] as const
export type DemoMode = (typeof DEMO_MODES)[number]
/** The state key of the demo mode. */
export const DEMO_MODE_KEY = 'demoMode'

/** The seed's exact words. */
export const MESSAGES = {
  bannedInventory: "You again, we're not letting you get a shirt after what happened at MCP Night.",
  bannedOrder: 'ABSOLUTELY NOT. GO AWAY 👋',
  orderPlaced: 'Order placed successfully!',
  orderFailed: 'Failed to place order. Please try again later.',
  ordersTitle: 'Your MCP Shop Orders',
  notAdmin: "Sorry, bruh. You don't have these permissions.",
  cleared: 'You are back to normal, dude.',
  prettyPlease: 'Fine, you can order since you said "pretty please".',
  demoModeSet: (mode: DemoMode) => `Demo mode set to ${mode}.`,
} as const

/** The one product, as the seed lists it. */
export const INVENTORY = {
  title: 'mcp.shop inventory',
  products: [
    {
      label: 'MCP T-Shirt',
      description: 'A comfortable shirt featuring the MCP logo',
      sizes: [...TSHIRT_SIZES],
      price: 'Free with MCP Server',
    },
  ],
}

const MAX_COMPANY = 200
const MAX_ADDRESS = 500

function json(data: Record<string, unknown>, isError = false): ShopResult {
  return { text: JSON.stringify(data, null, 2), data, ...(isError ? { isError } : {}) }
}

function refusal(text: string): ShopResult {
  return { text, isError: true }
}

async function demoMode(ctx: ShopContext): Promise<DemoMode> {
  return (await ctx.state.read(DEMO_MODE_KEY)) === 'banned' ? 'banned' : 'normal'
}

/** `listMcpShopInventory`: the items for sale, unless the caller is banned. */
export async function listMcpShopInventory(ctx: ShopContext): Promise<ShopResult> {
  if ((await demoMode(ctx)) === 'banned') return refusal(MESSAGES.bannedInventory)
  return json(INVENTORY)
}

// What the MCP SDK says, after the field's name, when an argument is missing or not text: the
// seed's own sentence, so a model reads the same words whichever layer caught the mistake.
const REQUIRED = 'Missing required field. Please fill in all required information.'

/** Text, trimmed (Unicode spaces too) and not blank: what the order book stores and policies see. */
function orderText(field: string, max: number) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? REQUIRED : `${field} must be text.`) })
    .trim()
    .min(1, { error: REQUIRED })
    .max(max, { error: `${field} is too long (at most ${max} characters).` })
}

/**
 * The order form: the schema the MCP SDK validates `buyMcpShopItem`'s arguments with, and the
 * parser the handler reads them with, so a policy and the handler see one value (issue 9 §4).
 * Exact: the size is one of five words as written (`" XXL"`, `"xxl"`, `"ＸＸＬ"` are refused,
 * not normalised after a policy looked at them), company and address are trimmed here and only
 * here, and no other property is accepted.
 */
export const ORDER_FORM = z.strictObject({
  company: orderText('company', MAX_COMPANY).describe('The company name'),
  mailingAddress: orderText('mailingAddress', MAX_ADDRESS).describe(
    'The full mailing address to ship to',
  ),
  tshirtSize: z
    .enum(TSHIRT_SIZES, {
      error: (issue) =>
        issue.input === undefined
          ? REQUIRED
          : `Invalid t-shirt size ${describeInput(issue.input)}. Must be one of: ${TSHIRT_SIZES.join(', ')}.`,
    })
    .describe(`Shirt size, exactly one of ${TSHIRT_SIZES.join(', ')}`),
})

/** A short, visible rendering of what was sent (quotes show spaces; long input is cut). */
function describeInput(input: unknown): string {
  const json = JSON.stringify(input) ?? String(input)
  return json.length > 40 ? `${json.slice(0, 37)}...` : json
}

/** A validated order form, or the one line that says which field is missing or wrong. */
export function parseOrderForm(input: unknown):
  | { ok: true; company: string; mailingAddress: string; tshirtSize: TshirtSize }
  | {
      ok: false
      message: string
    } {
  const parsed = ORDER_FORM.safeParse(input)
  if (parsed.success) return { ok: true, ...parsed.data }
  const form = (input !== null && typeof input === 'object' ? input : {}) as Record<string, unknown>
  const fields = ['company', 'mailingAddress', 'tshirtSize'] as const
  const missing = fields.filter((f) => {
    const value = form[f]
    return value === undefined || value === null || (typeof value === 'string' && !value.trim())
  })
  if (missing.length > 0)
    return {
      ok: false,
      message: `Missing required fields: ${missing.join(', ')}. Please fill in all required information.`,
    }
  const [issue] = parsed.error.issues
  return { ok: false, message: issue?.message ?? 'The order form is not valid.' }
}

/**
 * `buyMcpShopItem`: orders a T-shirt for the caller. The ban is read from the person's durable
 * state on every call, so neither a restart nor a new client connection lifts it.
 */
export async function buyMcpShopItem(ctx: ShopContext, input: unknown): Promise<ShopResult> {
  if ((await demoMode(ctx)) === 'banned') return refusal(MESSAGES.bannedOrder)
  const form = parseOrderForm(input)
  if (!form.ok) return refusal(form.message)
  const email = ctx.caller.claims.email
  try {
    const order = await ctx.orders.place({
      sub: ctx.caller.sub,
      clientId: ctx.caller.clientId ?? null,
      email: typeof email === 'string' ? email : null,
      company: form.company,
      mailingAddress: form.mailingAddress,
      tshirtSize: form.tshirtSize,
    })
    return json({ status: 'success', message: MESSAGES.orderPlaced, order })
  } catch {
    // The model gets the seed's generic line; the reason belongs in the server's logs.
    return json({ status: 'error', message: MESSAGES.orderFailed }, true)
  }
}

/** `listMcpShopOrders`: the caller's own orders, never anyone else's. */
export async function listMcpShopOrders(ctx: ShopContext): Promise<ShopResult> {
  const orders = await ctx.orders.listFor(ctx.caller.sub)
  return json({ title: MESSAGES.ordersTitle, status: 'success', orders })
}

// Claims of the token that are protocol, not the person's profile.
const PROTOCOL_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'scope',
  'scp',
  'client_id',
  'azp',
  'act',
  'cnf',
  'grant_id',
  'auth_time',
  'acr',
  'amr',
  'sid',
  'nonce',
  'name',
  'email',
  'roles',
  'permissions',
])

/**
 * `getUserInfo`: who the shop thinks you are — name, email, roles, permissions and custom claims
 * (e.g. `favorite_song`) from the verified token. Needs the `shop:admin` permission. Unlike the
 * seed, it shows claims only: a token in a tool result lands in the model's context.
 */
export async function getUserInfo(ctx: ShopContext): Promise<ShopResult> {
  const { caller } = ctx
  if (!caller.permissions.includes(SHOP_ADMIN_PERMISSION)) return refusal(MESSAGES.notAdmin)
  const claims = Object.fromEntries(
    Object.entries(caller.claims).filter(([name]) => !PROTOCOL_CLAIMS.has(name)),
  )
  const info = {
    sub: caller.sub,
    name: caller.claims.name ?? null,
    email: caller.claims.email ?? null,
    roles: [...caller.roles],
    permissions: [...caller.permissions],
    claims,
    clientId: caller.clientId ?? null,
    scopes: [...caller.scopes],
  }
  return { text: `Debug info: ${JSON.stringify(info, null, 2)}`, data: info }
}

/** `setDemoMode`: puts the caller in `normal` or `banned` mode, for the demo. */
export async function setDemoMode(ctx: ShopContext, input: unknown): Promise<ShopResult> {
  const mode = (input as { mode?: unknown } | null)?.mode
  if (!(DEMO_MODES as readonly unknown[]).includes(mode))
    return refusal(
      mode === undefined
        ? `Missing required field: mode. Must be one of: ${DEMO_MODES.join(', ')}.`
        : `Invalid mode "${String(mode)}". Must be one of: ${DEMO_MODES.join(', ')}.`,
    )
  await ctx.state.update(DEMO_MODE_KEY, () => mode as DemoMode)
  return { text: MESSAGES.demoModeSet(mode as DemoMode) }
}

/** `clearDemoMode`: removes the demo mode, so the caller is back to normal (the seed did not). */
export async function clearDemoMode(ctx: ShopContext): Promise<ShopResult> {
  await ctx.state.update(DEMO_MODE_KEY, () => undefined)
  return { text: MESSAGES.cleared }
}

/** `prettyPlease`: the magic words lift the ban. */
export async function prettyPlease(ctx: ShopContext): Promise<ShopResult> {
  await ctx.state.update(DEMO_MODE_KEY, () => 'normal')
  return { text: MESSAGES.prettyPlease }
}

/** A shop tool as the MCP server will register it: name, description, input, and who may call it. */
export interface ShopTool {
  name: string
  /** The seed's description. */
  description: string
  /**
   * The exact input (strict: no other property), which the MCP SDK validates before the rule and
   * the handler run: both are given the parsed value, never the raw arguments.
   */
  inputSchema: z.ZodObject
  /** Scopes the access token must carry. */
  scopes: string[]
  /** Permissions the person must have (from the token's `permissions`). */
  permissions: string[]
  run(ctx: ShopContext, input: unknown): Promise<ShopResult>
}

/** The scopes of the shop's resource; `deputy demo` registers the same names. */
export const SHOP_SCOPES = {
  read: 'shop:read',
  order: 'shop:order',
  admin: 'shop:admin',
} as const

/** The seven tools of the seed, in its order, ready for the MCP kit to register. */
export const SHOP_TOOLS: ShopTool[] = [
  {
    name: 'setDemoMode',
    description: 'FOR DEMO: Configure user simulation',
    inputSchema: z.strictObject({ mode: z.enum(DEMO_MODES) }),
    scopes: [SHOP_SCOPES.admin],
    permissions: [],
    run: setDemoMode,
  },
  {
    name: 'clearDemoMode',
    description: 'FOR DEMO: Clear the user simulation',
    inputSchema: z.strictObject({}),
    scopes: [SHOP_SCOPES.admin],
    permissions: [],
    run: (ctx) => clearDemoMode(ctx),
  },
  {
    name: 'getUserInfo',
    description: 'Get current user information',
    inputSchema: z.strictObject({}),
    scopes: [SHOP_SCOPES.admin],
    // Checked by the handler too, so the refusal is the seed's words, not a generic one.
    permissions: [SHOP_ADMIN_PERMISSION],
    run: (ctx) => getUserInfo(ctx),
  },
  {
    name: 'listMcpShopInventory',
    description: 'Returns a list of the items for sale at mcp.shop. Currently, everything is free.',
    inputSchema: z.strictObject({}),
    scopes: [SHOP_SCOPES.read],
    permissions: [],
    run: (ctx) => listMcpShopInventory(ctx),
  },
  {
    name: 'buyMcpShopItem',
    description:
      'Orders a t-shirt from the MCP shop. Requires company name, mailing address, and shirt size.',
    inputSchema: ORDER_FORM,
    scopes: [SHOP_SCOPES.order],
    permissions: [],
    run: buyMcpShopItem,
  },
  {
    name: 'listMcpShopOrders',
    description: 'Lists the orders placed by the user at mcp.shop',
    inputSchema: z.strictObject({}),
    scopes: [SHOP_SCOPES.read],
    permissions: [],
    run: (ctx) => listMcpShopOrders(ctx),
  },
  {
    name: 'prettyPlease',
    description: 'If the user says pretty please, set the demo mode to normal',
    inputSchema: z.strictObject({}),
    scopes: [SHOP_SCOPES.order],
    permissions: [],
    run: (ctx) => prettyPlease(ctx),
  },
]
