import { memoryStateStore, userState } from '@deputy/mcp'
import { describe, expect, it } from 'vitest'
import {
  BUY_INPUT,
  buyBindingMessage,
  buyStock,
  LIMIT_KEY,
  listStocks,
  OPENING_CASH_CENTS,
  PORTFOLIO_KEY,
  RECENT_TRADES,
  SELL_INPUT,
  STOCKS,
  SYMBOLS,
  sellStock,
  showPortfolio,
  showStockPrice,
  TRADING_TOOLS,
  type TradingContext,
} from '../src/index.js'

/**
 * The trading tools as plain functions over a person's state: the fixed price table, the opening
 * cash, buys and sells moving cash and shares together, and refusals that leave the portfolio as
 * it was. (Which buys wait for approval is policy: packages/server/test/e2e/trading-*.test.ts.)
 */

const AT = new Date('2026-12-02T09:30:00Z')

function person(sub = 'ann', store = memoryStateStore()): TradingContext {
  const state = userState(store, { resource: 'https://trading.example/mcp', sub })
  return {
    state: { read: (key) => state.get(key), update: (key, fn) => state.update(key, fn) },
    now: () => AT,
  }
}

async function portfolio(ctx: TradingContext) {
  return (await showPortfolio(ctx)).data as {
    cashCents: number
    holdings: { symbol: string; shares: number; valueCents: number }[]
    recentTrades: { number: number; side: string; symbol: string; quantity: number }[]
    limitCents: number | null
  }
}

describe('list_stocks and show_stock_price: the fixed price table', () => {
  it('lists every stock with its price, in dollars and cents', () => {
    const listed = listStocks().data as { stocks: { symbol: string; price: string }[] }
    expect(listed.stocks.map((stock) => stock.symbol)).toEqual(SYMBOLS)
    expect(listed.stocks[0]).toEqual({
      symbol: 'ATKO',
      name: 'Atko Corporation',
      price: '$142.18',
      priceCents: 14_218,
    })
    expect(listed.stocks.find((stock) => stock.symbol === 'QNTM')?.price).toBe('$1,204.50')
  })

  it("shows one stock's price, the same every time", () => {
    expect(showStockPrice({ symbol: 'ZEKO' }).data).toEqual({
      symbol: 'ZEKO',
      name: 'Zeko Advanced Systems',
      price: '$53.40',
      priceCents: 5_340,
    })
    expect(showStockPrice({ symbol: 'ZEKO' }).text).toBe(showStockPrice({ symbol: 'ZEKO' }).text)
  })

  it('refuses an unknown symbol, and any spelling but the listed one, naming the listed symbols', () => {
    const price = TRADING_TOOLS.find((tool) => tool.name === 'show_stock_price')?.inputSchema
    for (const symbol of ['ACME', 'atko', ' ATKO', 'ATKO ', 'ＡＴＫＯ', 7, null]) {
      const parsed = price?.safeParse({ symbol })
      expect(parsed?.success, JSON.stringify(symbol)).toBe(false)
      expect(parsed?.error?.issues[0]?.message).toBe(
        `Unknown symbol ${JSON.stringify(symbol)}. Listed: ATKO, ZEKO, LMNL, HRBR, QNTM, GRDN.`,
      )
    }
    expect(price?.safeParse({})?.error?.issues[0]?.message).toBe('Missing required field: symbol.')
    expect(price?.safeParse({ symbol: 'ATKO', exchange: 'NYSE' }).success).toBe(false)
  })
})

describe('show_portfolio', () => {
  it('starts with $10,000 of cash, nothing held, no trades and no limit', async () => {
    const ctx = person()
    expect(await portfolio(ctx)).toMatchObject({
      cashCents: OPENING_CASH_CENTS,
      cash: '$10,000.00',
      holdings: [],
      totalValue: '$10,000.00',
      recentTrades: [],
      limitCents: null,
      limit: 'none set: every buy waits for your approval',
    })
  })

  it("shows the person's limit from their state", async () => {
    const ctx = person()
    await ctx.state.update(LIMIT_KEY, () => 100_000)
    expect(await portfolio(ctx)).toMatchObject({
      limitCents: 100_000,
      limit: '$1,000.00: a buy that could cost more waits for your approval',
    })
  })
})

describe('buy_stock', () => {
  it('a small buy: cash goes down by price times quantity, the shares are held, the trade recorded', async () => {
    const ctx = person()
    const bought = await buyStock(ctx, { symbol: 'ATKO', quantity: 5, maxPriceCents: 15_000 })
    expect(bought.isError).toBeUndefined()
    expect(bought.data).toMatchObject({
      status: 'success',
      message: 'Bought 5 ATKO at $142.18 a share for $710.90.',
      cash: '$9,289.10',
      trade: {
        number: 1,
        side: 'buy',
        symbol: 'ATKO',
        quantity: 5,
        priceCents: 14_218,
        totalCents: 71_090,
        at: AT.toISOString(),
      },
    })
    const after = await portfolio(ctx)
    expect(after.cashCents).toBe(OPENING_CASH_CENTS - 71_090)
    expect(after.holdings).toEqual([
      {
        symbol: 'ATKO',
        name: 'Atko Corporation',
        shares: 5,
        price: '$142.18',
        value: '$710.90',
        valueCents: 71_090,
      },
    ])
    expect((await showPortfolio(ctx)).data?.totalValue).toBe('$10,000.00')
  })

  it('insufficient cash: refused, and nothing changes', async () => {
    const ctx = person()
    await buyStock(ctx, { symbol: 'LMNL', quantity: 2, maxPriceCents: 875 })
    const before = await ctx.state.read(PORTFOLIO_KEY)
    const refused = await buyStock(ctx, { symbol: 'QNTM', quantity: 9, maxPriceCents: 130_000 })
    expect(refused).toMatchObject({
      isError: true,
      data: {
        status: 'refused',
        message:
          'Not enough cash: 9 QNTM cost $10,840.50 and you have $9,982.50. Nothing was bought.',
      },
    })
    expect(await ctx.state.read(PORTFOLIO_KEY)).toEqual(before)
  })

  it('a price above maxPriceCents is refused: the buy never costs more than quantity times maxPriceCents', async () => {
    const ctx = person()
    const refused = await buyStock(ctx, { symbol: 'ATKO', quantity: 1, maxPriceCents: 14_217 })
    expect(refused).toMatchObject({
      isError: true,
      data: {
        message: 'ATKO is at $142.18 a share, above your maximum of $142.17. Nothing was bought.',
      },
    })
    expect(await ctx.state.read(PORTFOLIO_KEY)).toBeUndefined()
  })

  it('takes whole numbers of shares and cents only, and nothing else', () => {
    for (const input of [
      { symbol: 'ATKO', quantity: 0, maxPriceCents: 100 },
      { symbol: 'ATKO', quantity: 1.5, maxPriceCents: 100 },
      { symbol: 'ATKO', quantity: '5', maxPriceCents: 100 },
      { symbol: 'ATKO', quantity: 10_001, maxPriceCents: 100 },
      { symbol: 'ATKO', quantity: 1, maxPriceCents: 142.18 },
      { symbol: 'ATKO', quantity: 1, maxPriceCents: -1 },
      { symbol: 'ATKO', quantity: 1 },
      { symbol: 'ATKO', quantity: 1, maxPriceCents: 100, approved: true },
    ])
      expect(BUY_INPUT.safeParse(input).success, JSON.stringify(input)).toBe(false)
    expect(
      BUY_INPUT.safeParse({ symbol: 'ATKO', quantity: 1.5, maxPriceCents: 1 }).error?.issues[0]
        ?.message,
    ).toBe('quantity must be a whole number from 1 to 10000.')
  })

  it('says what a buy waiting for approval is, in the line the person sees (at most 100 characters)', () => {
    expect(buyBindingMessage({ symbol: 'ATKO', quantity: 8, maxPriceCents: 14_218 })).toBe(
      'Buy 8 ATKO at up to $142.18 a share',
    )
    const longest = buyBindingMessage({
      symbol: 'QNTM',
      quantity: 10_000,
      maxPriceCents: 10_000_000,
    })
    expect(longest).toBe('Buy 10000 QNTM at up to $100,000.00 a share')
    expect(longest.length).toBeLessThanOrEqual(100)
  })

  it('two buys at once never spend the same cash', async () => {
    const ctx = person()
    // Each costs $6,022.50; the cash covers one.
    const both = await Promise.all([
      buyStock(ctx, { symbol: 'QNTM', quantity: 5, maxPriceCents: 120_450 }),
      buyStock(ctx, { symbol: 'QNTM', quantity: 5, maxPriceCents: 120_450 }),
    ])
    expect(both.map((result) => result.isError === true).sort()).toEqual([false, true])
    const after = await portfolio(ctx)
    expect(after.cashCents).toBe(OPENING_CASH_CENTS - 5 * 120_450)
    expect(after.holdings.map((holding) => [holding.symbol, holding.shares])).toEqual([['QNTM', 5]])
  })
})

describe('sell_stock', () => {
  it('sells held shares at the price: cash goes up, the shares go, a sold-off stock leaves the portfolio', async () => {
    const ctx = person()
    await buyStock(ctx, { symbol: 'HRBR', quantity: 10, maxPriceCents: 6_120 })
    const sold = await sellStock(ctx, { symbol: 'HRBR', quantity: 4 })
    expect(sold.data).toMatchObject({
      status: 'success',
      message: 'Sold 4 HRBR at $61.20 a share for $244.80.',
      trade: { number: 2, side: 'sell', symbol: 'HRBR', quantity: 4, totalCents: 24_480 },
    })
    let after = await portfolio(ctx)
    expect(after.cashCents).toBe(OPENING_CASH_CENTS - 6 * 6_120)
    expect(after.holdings.map((holding) => [holding.symbol, holding.shares])).toEqual([['HRBR', 6]])
    await sellStock(ctx, { symbol: 'HRBR', quantity: 6 })
    after = await portfolio(ctx)
    expect(after.cashCents).toBe(OPENING_CASH_CENTS)
    expect(after.holdings).toEqual([])
    expect(after.recentTrades.map((trade) => [trade.number, trade.side, trade.quantity])).toEqual([
      [1, 'buy', 10],
      [2, 'sell', 4],
      [3, 'sell', 6],
    ])
  })

  it('refuses to sell more than is held, or what is not held, and changes nothing', async () => {
    const ctx = person()
    await buyStock(ctx, { symbol: 'ZEKO', quantity: 3, maxPriceCents: 5_340 })
    const before = await ctx.state.read(PORTFOLIO_KEY)
    expect((await sellStock(ctx, { symbol: 'ZEKO', quantity: 5 })).data?.message).toBe(
      'You hold 3 ZEKO, not 5. Nothing was sold.',
    )
    expect((await sellStock(ctx, { symbol: 'ATKO', quantity: 1 })).data?.message).toBe(
      'You hold 0 ATKO, not 1. Nothing was sold.',
    )
    expect(await ctx.state.read(PORTFOLIO_KEY)).toEqual(before)
    expect(SELL_INPUT.safeParse({ symbol: 'ZEKO', quantity: -1 }).success).toBe(false)
  })

  it('keeps the newest trades, numbered from the first', async () => {
    const ctx = person()
    for (let i = 0; i < RECENT_TRADES + 2; i++)
      await buyStock(ctx, { symbol: 'LMNL', quantity: 1, maxPriceCents: 875 })
    const after = await portfolio(ctx)
    expect(after.recentTrades).toHaveLength(RECENT_TRADES)
    expect(after.recentTrades[0]?.number).toBe(3)
    expect(after.recentTrades.at(-1)?.number).toBe(RECENT_TRADES + 2)
  })
})

describe('state', () => {
  it("is each person's own", async () => {
    const store = memoryStateStore()
    const ann = person('ann', store)
    const bob = person('bob', store)
    await buyStock(ann, { symbol: 'ATKO', quantity: 1, maxPriceCents: 14_218 })
    expect((await portfolio(bob)).cashCents).toBe(OPENING_CASH_CENTS)
    expect((await portfolio(ann)).cashCents).toBe(OPENING_CASH_CENTS - 14_218)
  })

  it('a stored value that is not a portfolio is an error, never a fresh $10,000', async () => {
    const ctx = person()
    await ctx.state.update(PORTFOLIO_KEY, () => ({ cashCents: 'lots' }))
    await expect(showPortfolio(ctx)).rejects.toThrow('the stored portfolio is not a portfolio')
    await expect(
      buyStock(ctx, { symbol: 'ATKO', quantity: 1, maxPriceCents: 14_218 }),
    ).rejects.toThrow()
  })

  it('the table and the tools agree', () => {
    expect(STOCKS.length).toBe(SYMBOLS.length)
    expect(TRADING_TOOLS.map((tool) => tool.name)).toEqual([
      'list_stocks',
      'show_stock_price',
      'show_portfolio',
      'buy_stock',
      'sell_stock',
    ])
  })
})
