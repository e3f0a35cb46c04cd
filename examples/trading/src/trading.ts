import { z } from 'zod'
import { dollars, STOCKS, type StockSymbol, SYMBOLS, stockOf } from './market.js'

// The Auth0 talk's trading agent (Identity for AI Agents, Patrick Riley and Carlos Galan): an
// agent that looks up stocks, shows the person's portfolio and buys and sells for them, where a
// risky buy waits for the person's approval. The tools are plain functions over the person's own
// durable state; which buys wait is not decided here but by the Cedar policies of
// policies/trading.cedar, before a handler runs.

/** A JSON value, what per-person state holds. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue }

/** The caller's own durable state at the trading server (one person, this server). */
export interface TradingState {
  read(key: string): Promise<JsonValue | undefined>
  /**
   * Atomic read-modify-write; returning undefined deletes the key. `fn` is pure and synchronous:
   * a store may run it again after a conflict.
   */
  update(
    key: string,
    fn: (current: JsonValue | undefined) => JsonValue | undefined,
  ): Promise<JsonValue | undefined>
}

/** What a tool handler needs: the person's state and the time of the trade. */
export interface TradingContext {
  state: TradingState
  now: () => Date
}

/** A tool's answer: text for the model, the same as data, and whether it is a refusal. */
export interface TradingResult {
  text: string
  isError?: boolean
  data?: Record<string, unknown>
}

/** The state key of the person's cash, holdings and recent trades. */
export const PORTFOLIO_KEY = 'portfolio'
/**
 * The state key of the person's trading limit in cents: a buy that could cost more waits for
 * their approval (policy `trading.over-limit`). Set by whoever runs the server for the person
 * (`deputy demo trading` gives the demo person $1,000), never by a tool.
 */
export const LIMIT_KEY = 'limitCents'
/** Cash a person starts with, in cents: $10,000. */
export const OPENING_CASH_CENTS = 1_000_000
/** The most shares one buy or sell moves. */
export const MAX_QUANTITY = 10_000
/** The highest maximum price a buy may name, in cents ($100,000 a share). */
export const MAX_PRICE_CENTS = 10_000_000
/** How many trades the portfolio remembers (the newest). */
export const RECENT_TRADES = 50

/** One executed buy or sell. */
export interface Trade {
  /** 1 for the person's first trade, then counting up. */
  number: number
  side: 'buy' | 'sell'
  symbol: StockSymbol
  quantity: number
  priceCents: number
  totalCents: number
  /** ISO 8601. */
  at: string
}

/** The person's account as stored under {@link PORTFOLIO_KEY}. */
export interface Portfolio {
  cashCents: number
  /** Shares held per symbol; a symbol sold off is removed. */
  holdings: Partial<Record<StockSymbol, number>>
  /** How many trades the person has made, ever. */
  tradeCount: number
  /** The newest {@link RECENT_TRADES} trades, oldest first. */
  trades: Trade[]
}

/** A portfolio nobody has traded in yet. */
export function openingPortfolio(): Portfolio {
  return { cashCents: OPENING_CASH_CENTS, holdings: {}, tradeCount: 0, trades: [] }
}

const tradeSchema = z.object({
  number: z.number().int().min(1),
  side: z.enum(['buy', 'sell']),
  symbol: z.enum(SYMBOLS),
  quantity: z.number().int().min(1),
  priceCents: z.number().int().min(0),
  totalCents: z.number().int().min(0),
  at: z.string(),
})

const portfolioSchema = z.object({
  cashCents: z.number().int().min(0),
  holdings: z.partialRecord(z.enum(SYMBOLS), z.number().int().min(1)),
  tradeCount: z.number().int().min(0),
  trades: z.array(tradeSchema),
})

/**
 * The stored portfolio, or the opening one when there is none. A stored value that is not a
 * portfolio is an error, not a fresh $10,000: nobody's account is reset by a bad write.
 */
export function parsePortfolio(stored: JsonValue | undefined): Portfolio {
  if (stored === undefined) return openingPortfolio()
  const parsed = portfolioSchema.safeParse(stored)
  if (!parsed.success) throw new Error(`the stored ${PORTFOLIO_KEY} is not a portfolio`)
  return parsed.data as Portfolio
}

/** The person's limit in cents, or undefined when none is set (then every buy waits). */
export function parseLimit(stored: JsonValue | undefined): number | undefined {
  return typeof stored === 'number' && Number.isSafeInteger(stored) && stored >= 0
    ? stored
    : undefined
}

function json(data: Record<string, unknown>, isError = false): TradingResult {
  return { text: JSON.stringify(data, null, 2), data, ...(isError ? { isError } : {}) }
}

function refusal(message: string): TradingResult {
  return json({ status: 'refused', message }, true)
}

function quote(symbol: StockSymbol) {
  const stock = stockOf(symbol)
  return {
    symbol: stock.symbol,
    name: stock.name,
    price: dollars(stock.priceCents),
    priceCents: stock.priceCents,
  }
}

/** A short, visible rendering of what was sent (quotes show spaces; long input is cut). */
function describeInput(input: unknown): string {
  const text = JSON.stringify(input) ?? String(input)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}

/**
 * A listed symbol exactly as written: `"atko"` or `" ATKO"` is refused by the schema, never
 * upper-cased by a handler after a policy compared it with `"ATKO"` (docs/policies.md).
 */
const symbolSchema = z
  .enum(SYMBOLS, {
    error: (issue) =>
      issue.input === undefined
        ? 'Missing required field: symbol.'
        : `Unknown symbol ${describeInput(issue.input)}. Listed: ${SYMBOLS.join(', ')}.`,
  })
  .describe(`The ticker symbol, exactly one of ${SYMBOLS.join(', ')}`)

function wholeNumber(field: string, max: number) {
  const message = `${field} must be a whole number from 1 to ${max}.`
  return z
    .number({
      error: (issue) => (issue.input === undefined ? `Missing required field: ${field}.` : message),
    })
    .int({ error: message })
    .min(1, { error: message })
    .max(max, { error: message })
}

/** `show_stock_price`'s input. */
export const PRICE_INPUT = z.strictObject({ symbol: symbolSchema })

/**
 * `buy_stock`'s input: a limit order. `maxPriceCents` bounds what a share may cost, so
 * `quantity * maxPriceCents` bounds the whole buy: the number the limit policy compares with the
 * person's limit, and what the person approves.
 */
export const BUY_INPUT = z.strictObject({
  symbol: symbolSchema,
  quantity: wholeNumber('quantity', MAX_QUANTITY).describe('How many shares to buy'),
  maxPriceCents: wholeNumber('maxPriceCents', MAX_PRICE_CENTS).describe(
    'The most to pay for one share, in US cents (show_stock_price gives the price); the buy is refused if the price is higher',
  ),
})

/** `sell_stock`'s input. */
export const SELL_INPUT = z.strictObject({
  symbol: symbolSchema,
  quantity: wholeNumber('quantity', MAX_QUANTITY).describe('How many shares to sell'),
})

/** `list_stocks`: every listed stock and its price. */
export function listStocks(): TradingResult {
  return json({ stocks: STOCKS.map((stock) => quote(stock.symbol)) })
}

/** `show_stock_price`: one stock's price. */
export function showStockPrice(input: z.infer<typeof PRICE_INPUT>): TradingResult {
  return json(quote(input.symbol))
}

/** `show_portfolio`: the person's cash, holdings at today's prices, limit and recent trades. */
export async function showPortfolio(ctx: TradingContext): Promise<TradingResult> {
  const portfolio = parsePortfolio(await ctx.state.read(PORTFOLIO_KEY))
  const limit = parseLimit(await ctx.state.read(LIMIT_KEY))
  const holdings = Object.entries(portfolio.holdings).map(([symbol, shares = 0]) => {
    const stock = stockOf(symbol as StockSymbol)
    return {
      symbol,
      name: stock.name,
      shares,
      price: dollars(stock.priceCents),
      value: dollars(shares * stock.priceCents),
      valueCents: shares * stock.priceCents,
    }
  })
  const invested = holdings.reduce((sum, holding) => sum + holding.valueCents, 0)
  return json({
    cash: dollars(portfolio.cashCents),
    cashCents: portfolio.cashCents,
    holdings,
    totalValue: dollars(portfolio.cashCents + invested),
    limit:
      limit === undefined
        ? 'none set: every buy waits for your approval'
        : `${dollars(limit)}: a buy that could cost more waits for your approval`,
    limitCents: limit ?? null,
    recentTrades: portfolio.trades,
  })
}

/** What one atomic update of the portfolio did: the trade, or why there was none. */
type Execution = { ok: true; trade: Trade; cashCents: number } | { ok: false; message: string }

/**
 * Applies `trade` to the stored portfolio in one read-modify-write, so two buys at once can never
 * spend the same cash; `check` refuses it against the current portfolio.
 */
async function execute(
  ctx: TradingContext,
  trade: Omit<Trade, 'number' | 'at'>,
  check: (portfolio: Portfolio) => string | undefined,
): Promise<Execution> {
  let execution: Execution = { ok: false, message: 'The trade was not made.' }
  const at = ctx.now().toISOString()
  await ctx.state.update(PORTFOLIO_KEY, (stored) => {
    const portfolio = parsePortfolio(stored)
    const problem = check(portfolio)
    if (problem !== undefined) {
      execution = { ok: false, message: problem }
      return stored
    }
    const held =
      (portfolio.holdings[trade.symbol] ?? 0) + (trade.side === 'buy' ? 1 : -1) * trade.quantity
    const holdings = { ...portfolio.holdings }
    if (held > 0) holdings[trade.symbol] = held
    else delete holdings[trade.symbol]
    const made: Trade = { ...trade, number: portfolio.tradeCount + 1, at }
    const cashCents =
      portfolio.cashCents + (trade.side === 'buy' ? -trade.totalCents : trade.totalCents)
    execution = { ok: true, trade: made, cashCents }
    const next: Portfolio = {
      cashCents,
      holdings,
      tradeCount: made.number,
      trades: [...portfolio.trades, made].slice(-RECENT_TRADES),
    }
    return next as unknown as JsonValue
  })
  return execution
}

/**
 * `buy_stock`: buys shares at the table's price, if it is at most `maxPriceCents` and the cash
 * covers it. Whether the buy may run at all (over the limit, a restricted stock) was decided
 * before, by policy.
 */
export async function buyStock(
  ctx: TradingContext,
  input: z.infer<typeof BUY_INPUT>,
): Promise<TradingResult> {
  const stock = stockOf(input.symbol)
  if (stock.priceCents > input.maxPriceCents)
    return refusal(
      `${stock.symbol} is at ${dollars(stock.priceCents)} a share, above your maximum of ${dollars(input.maxPriceCents)}. Nothing was bought.`,
    )
  const totalCents = stock.priceCents * input.quantity
  const execution = await execute(
    ctx,
    {
      side: 'buy',
      symbol: stock.symbol,
      quantity: input.quantity,
      priceCents: stock.priceCents,
      totalCents,
    },
    (portfolio) =>
      portfolio.cashCents < totalCents
        ? `Not enough cash: ${input.quantity} ${stock.symbol} cost ${dollars(totalCents)} and you have ${dollars(portfolio.cashCents)}. Nothing was bought.`
        : undefined,
  )
  if (!execution.ok) return refusal(execution.message)
  return json({
    status: 'success',
    message: `Bought ${input.quantity} ${stock.symbol} at ${dollars(stock.priceCents)} a share for ${dollars(totalCents)}.`,
    trade: execution.trade,
    cash: dollars(execution.cashCents),
  })
}

/** `sell_stock`: sells shares the person holds at the table's price. */
export async function sellStock(
  ctx: TradingContext,
  input: z.infer<typeof SELL_INPUT>,
): Promise<TradingResult> {
  const stock = stockOf(input.symbol)
  const totalCents = stock.priceCents * input.quantity
  const execution = await execute(
    ctx,
    {
      side: 'sell',
      symbol: stock.symbol,
      quantity: input.quantity,
      priceCents: stock.priceCents,
      totalCents,
    },
    (portfolio) => {
      const held = portfolio.holdings[stock.symbol] ?? 0
      return held < input.quantity
        ? `You hold ${held} ${stock.symbol}, not ${input.quantity}. Nothing was sold.`
        : undefined
    },
  )
  if (!execution.ok) return refusal(execution.message)
  return json({
    status: 'success',
    message: `Sold ${input.quantity} ${stock.symbol} at ${dollars(stock.priceCents)} a share for ${dollars(totalCents)}.`,
    trade: execution.trade,
    cash: dollars(execution.cashCents),
  })
}

/** The scopes of the trading server's resource; `deputy demo trading` registers the same names. */
export const TRADING_SCOPES = {
  read: 'trading:read',
  trade: 'trading:trade',
} as const

/** A trading tool as the MCP server registers it. */
export interface TradingTool {
  name: string
  description: string
  /** The exact input (strict), which the MCP SDK validates before the rule and the handler run. */
  inputSchema: z.ZodObject
  /** Scopes the access token must carry. */
  scopes: string[]
  /**
   * The line the person sees when a call waits for their approval (CIBA `binding_message`, at
   * most 100 characters), beside the call's exact arguments.
   */
  bindingMessage?: (input: never) => string
  run(ctx: TradingContext, input: never): Promise<TradingResult> | TradingResult
}

/** `buy_stock`'s request for approval, in words: `Buy 8 ATKO at up to $142.18 a share`. */
export function buyBindingMessage(input: z.infer<typeof BUY_INPUT>): string {
  return `Buy ${input.quantity} ${input.symbol} at up to ${dollars(input.maxPriceCents)} a share`
}

/** The five tools of the talk's trading agent. */
export const TRADING_TOOLS: TradingTool[] = [
  {
    name: 'list_stocks',
    description: 'Lists the stocks for sale and their prices.',
    inputSchema: z.strictObject({}),
    scopes: [TRADING_SCOPES.read],
    run: () => listStocks(),
  },
  {
    name: 'show_stock_price',
    description: "Shows one stock's current price.",
    inputSchema: PRICE_INPUT,
    scopes: [TRADING_SCOPES.read],
    run: (_ctx, input: z.infer<typeof PRICE_INPUT>) => showStockPrice(input),
  },
  {
    name: 'show_portfolio',
    description:
      "Shows the user's cash, the shares they hold and what they are worth, their trading limit and their recent trades.",
    inputSchema: z.strictObject({}),
    scopes: [TRADING_SCOPES.read],
    run: (ctx) => showPortfolio(ctx),
  },
  {
    name: 'buy_stock',
    description:
      "Buys shares for the user at the current price, if it is at most maxPriceCents a share. A buy that could cost more than the user's trading limit (quantity times maxPriceCents), or of a restricted stock, waits for the user's approval.",
    inputSchema: BUY_INPUT,
    scopes: [TRADING_SCOPES.trade],
    bindingMessage: buyBindingMessage,
    run: buyStock,
  },
  {
    name: 'sell_stock',
    description: 'Sells shares the user holds at the current price.',
    inputSchema: SELL_INPUT,
    scopes: [TRADING_SCOPES.trade],
    run: sellStock,
  },
]
