import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import type { AuditRecord } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { createSqlUserStateStore } from '../../src/mcp-state/index.js'
import { freePort } from '../interop/fixture.js'
import { startTradingDemo, type TradingDemo } from './fixture.js'
import { LoopbackOAuthProvider } from './provider.js'
import { McpSession, type ToolAnswer } from './session.js'

/**
 * Issue 11 §7, the server and its policies: `deputy demo trading` serves the Auth0 talk's trading
 * agent (examples/trading) beside mcp.shop; its five tools work through the official v2 MCP
 * client; a buy that could cost more than the person's limit, or of a restricted stock, is held
 * by a Cedar policy an operator can edit (`needs_approval`): it waits for the person's approval
 * and does not run without it (the approval itself, on the phone: trading.test.ts). Deputy on a
 * real socket, nothing of Deputy or the server replaced.
 */

const OPERATOR = { type: 'user' as const, id: 'operator', label: 'ops@trading.example' }
const OVER_LIMIT = 'trading.over-limit'
const RESTRICTED = 'trading.restricted-stock'
const TRADING_POLICIES = ['trading.over-limit', 'trading.restricted-stock', 'trading.tools']
const TOOLS = ['buy_stock', 'list_stocks', 'sell_stock', 'show_portfolio', 'show_stock_price']

interface Portfolio {
  cashCents: number
  holdings: { symbol: string; shares: number }[]
  recentTrades: { number: number; side: string; symbol: string; quantity: number }[]
  limitCents: number | null
}

describe('the trading demo beside mcp.shop (issue 11 §7)', () => {
  let demo: TradingDemo

  beforeAll(async () => {
    // A held buy answers at once that it is pending (the approvals themselves: trading.test.ts).
    demo = await startTradingDemo({}, { approvalWaitSeconds: 0 })
  })

  afterAll(async () => {
    await demo?.close()
  })

  async function connect(
    name: string,
    person: { email: string; password: string } = demo.person,
  ): Promise<McpSession> {
    const provider = new LoopbackOAuthProvider(
      `http://127.0.0.1:${await freePort()}/callback`,
      name,
    )
    const session = new McpSession('v2', demo.tradingUrl, provider, person)
    await session.connect()
    return session
  }

  async function portfolio(session: McpSession): Promise<Portfolio> {
    return JSON.parse((await session.call('show_portfolio')).text)
  }

  async function records(type: string, tool: string): Promise<AuditRecord[]> {
    const all = await tailAudit(demo.deputy.deps.store, { limit: 500, type })
    return all.filter((record) =>
      type === 'policy.decided'
        ? record.data.action === `${demo.tradingUrl}#${tool}`
        : record.data.resource === demo.tradingUrl && record.data.tool === tool,
    )
  }

  /**
   * A buy the policies held for approval: answered as pending the person's approval, with their
   * page, and refused before the handler ran, by `policy`.
   */
  async function expectHeld(answer: ToolAnswer, policy: string): Promise<void> {
    expect(answer.isError).toBe(true)
    expect(answer.text).toMatch(
      /^This call to buy_stock is waiting for .+'s approval at http:\/\/127\.0\.0\.1:\d+\/approvals\/[^ ]+, until /,
    )
    expect(answer.meta?.['io.deputy/approval']).toMatchObject({ status: 'pending' })
    const [held] = (await records('tool.refused', 'buy_stock')).slice(-1)
    expect(held).toMatchObject({
      decision: 'needs-approval',
      reason: 'approval_pending',
      data: { outcome: 'refused', policies: [policy] },
    })
  }

  /** A person with their own trading limit (cents), or none. */
  async function newPerson(email: string, limitCents?: number) {
    const person = { email, password: `a long password for ${email}` }
    const created = await demo.deputy.deps.users.create(
      { email, name: email.split('@')[0] ?? email, password: person.password },
      OPERATOR,
    )
    if (limitCents !== undefined)
      await createSqlUserStateStore(demo.deputy.deps).update(
        { resource: demo.tradingUrl, sub: created.id },
        'limitCents',
        () => limitCents,
      )
    return person
  }

  it("registers the trading resource beside the shop's (which stays the default), declares the five tools and installs the policies", async () => {
    const { deps } = demo.deputy
    expect(demo.tradingUrl).toBe(`${demo.issuer}/trading/mcp`)
    expect(await deps.resources.get(demo.tradingUrl)).toMatchObject({
      name: 'Trading (demo)',
      isDefault: false,
      scopes: { 'trading:read': expect.any(String), 'trading:trade': expect.any(String) },
    })
    expect((await deps.resources.get(demo.mcpUrl))?.isDefault).toBe(true)

    // Its metadata at the path-aware URL; the root one stays the shop's.
    const metadata = await fetch(`${demo.issuer}/.well-known/oauth-protected-resource/trading/mcp`)
    expect(await metadata.json()).toMatchObject({
      resource: demo.tradingUrl,
      authorization_servers: [demo.issuer],
      scopes_supported: ['trading:read', 'trading:trade'],
      resource_name: 'Trading (demo)',
    })
    const root = await fetch(`${demo.issuer}/.well-known/oauth-protected-resource`)
    expect((await root.json()).resource).toBe(demo.mcpUrl)

    const stored = await deps.policies.list()
    expect(
      stored
        .map((policy) => policy.id)
        .filter((id) => id.startsWith('trading.'))
        .sort(),
    ).toEqual(TRADING_POLICIES)
    const byId = new Map(stored.map((policy) => [policy.id, policy]))
    expect(byId.get('trading.over-limit')).toMatchObject({
      effect: 'forbid',
      message: 'This buy could cost more than your trading limit, so it waits for your approval.',
      actions: [`${demo.tradingUrl}#buy_stock`],
    })
    const actions = (await deps.policies.actions()).filter(
      (action) => action.resource === demo.tradingUrl,
    )
    expect(actions.map((action) => action.name).sort()).toEqual(TOOLS)
    expect(actions.find((action) => action.name === 'buy_stock')).toMatchObject({
      arguments: {
        type: 'object',
        properties: {
          symbol: { type: 'string', enum: ['ATKO', 'ZEKO', 'LMNL', 'HRBR', 'QNTM', 'GRDN'] },
          quantity: { type: 'integer' },
          maxPriceCents: { type: 'integer' },
        },
        additionalProperties: false,
      },
      state: { type: 'object', properties: { limitCents: { type: 'integer', minimum: 0 } } },
    })
    // The shop's policies are there too, untouched.
    expect(stored.some((policy) => policy.id === 'mcp-shop.banned-order')).toBe(true)
  })

  it('lists stocks, shows a price and the portfolio (with the demo person’s $1,000 limit), buys small and sells, through the official MCP client', async () => {
    const session = await connect('Trading agent (v2 SDK)')
    expect(await session.listTools()).toEqual([
      'list_stocks',
      'show_stock_price',
      'show_portfolio',
      'buy_stock',
      'sell_stock',
    ])
    const stocks = JSON.parse((await session.call('list_stocks')).text).stocks
    expect(stocks).toHaveLength(6)
    expect(JSON.parse((await session.call('show_stock_price', { symbol: 'ATKO' })).text)).toEqual({
      symbol: 'ATKO',
      name: 'Atko Corporation',
      price: '$142.18',
      priceCents: 14_218,
    })
    const before = await portfolio(session)
    expect(before).toMatchObject({ cashCents: 1_000_000, holdings: [], limitCents: 100_000 })

    // $710.90 at most: under the limit, so it runs at once.
    const bought = await session.call('buy_stock', {
      symbol: 'ATKO',
      quantity: 5,
      maxPriceCents: 14_218,
    })
    expect(bought.isError).toBe(false)
    expect(JSON.parse(bought.text).message).toBe('Bought 5 ATKO at $142.18 a share for $710.90.')
    const [called] = (await records('tool.called', 'buy_stock')).slice(-1)
    expect(called).toMatchObject({
      decision: 'allow',
      onBehalfOf: { type: 'user', id: demo.personId },
      data: { outcome: 'success', policies: ['trading.tools'] },
    })

    const sold = await session.call('sell_stock', { symbol: 'ATKO', quantity: 2 })
    expect(JSON.parse(sold.text).message).toBe('Sold 2 ATKO at $142.18 a share for $284.36.')
    const after = await portfolio(session)
    expect(after.cashCents).toBe(1_000_000 - 71_090 + 28_436)
    expect(after.holdings.map((h) => [h.symbol, h.shares])).toEqual([['ATKO', 3]])

    // Selling more than is held is the handler's refusal; nothing changes.
    const oversold = await session.call('sell_stock', { symbol: 'ATKO', quantity: 4 })
    expect(oversold.isError).toBe(true)
    expect(JSON.parse(oversold.text).message).toBe('You hold 3 ATKO, not 4. Nothing was sold.')
    expect((await portfolio(session)).cashCents).toBe(after.cashCents)
    await session.close()
  })

  it('an unknown symbol is refused by the schema with the listed ones, before any policy or handler', async () => {
    const session = await connect('Unknown symbol agent (v2 SDK)')
    const before = await portfolio(session)
    for (const [tool, args] of [
      ['show_stock_price', { symbol: 'ACME' }],
      ['buy_stock', { symbol: 'acme', quantity: 1, maxPriceCents: 100 }],
      ['buy_stock', { symbol: 'grdn', quantity: 1, maxPriceCents: 2_705 }],
      ['sell_stock', { symbol: 'GRDN ', quantity: 1 }],
    ] as const) {
      const answer = await session.call(tool, args)
      expect(answer.isError, JSON.stringify(args)).toBe(true)
      expect(answer.text).toMatch(
        new RegExp(
          `^Input validation error: Invalid arguments for tool ${tool}: symbol: Unknown symbol`,
        ),
      )
      expect(answer.text).toContain('Listed: ATKO, ZEKO, LMNL, HRBR, QNTM, GRDN.')
    }
    expect(await portfolio(session)).toEqual(before)
    await session.close()
  })

  it('insufficient cash: a person whose limit covers the buy is refused by the handler, and keeps their cash', async () => {
    const rich = await newPerson('whale@trading.example', 5_000_000)
    const session = await connect('Whale agent (v2 SDK)', rich)
    expect((await portfolio(session)).limitCents).toBe(5_000_000)
    const answer = await session.call('buy_stock', {
      symbol: 'QNTM',
      quantity: 9,
      maxPriceCents: 120_450,
    })
    expect(answer.isError).toBe(true)
    expect(JSON.parse(answer.text).message).toBe(
      'Not enough cash: 9 QNTM cost $10,840.50 and you have $10,000.00. Nothing was bought.',
    )
    // The policy allowed it (under $50,000), the handler ran and refused.
    const [called] = (await records('tool.called', 'buy_stock')).slice(-1)
    expect(called).toMatchObject({ decision: 'allow', data: { outcome: 'error' } })
    expect(await portfolio(session)).toMatchObject({ cashCents: 1_000_000, holdings: [] })
    await session.close()
  })

  it('a large buy is not run without approval: needs-approval by trading.over-limit, audited, the portfolio untouched', async () => {
    const session = await connect('Large buy agent (v2 SDK)')
    const before = await portfolio(session)
    // 8 × $142.18 = $1,137.44, over the $1,000 limit.
    await expectHeld(
      await session.call('buy_stock', { symbol: 'ATKO', quantity: 8, maxPriceCents: 14_218 }),
      OVER_LIMIT,
    )
    // The bound is what counts: a small buy that names a high maximum price could cost more.
    await expectHeld(
      await session.call('buy_stock', { symbol: 'LMNL', quantity: 2, maxPriceCents: 60_000 }),
      OVER_LIMIT,
    )
    const [held] = (await records('tool.refused', 'buy_stock')).slice(-1)
    expect(held?.onBehalfOf).toEqual({ type: 'user', id: demo.personId })
    const [decided] = (await records('policy.decided', 'buy_stock')).slice(-1)
    expect(decided).toMatchObject({
      decision: 'needs-approval',
      data: { policies: ['trading.over-limit'] },
    })
    expect(await portfolio(session)).toEqual(before)
    // Exactly at the limit is not over it: 2 × $500.00.
    expect(
      (await session.call('buy_stock', { symbol: 'LMNL', quantity: 2, maxPriceCents: 50_000 }))
        .isError,
    ).toBe(false)
    await session.close()
  })

  it('a restricted stock waits for approval however small the buy; a person with no limit set approves every buy', async () => {
    const session = await connect('Restricted agent (v2 SDK)')
    const before = await portfolio(session)
    await expectHeld(
      await session.call('buy_stock', { symbol: 'GRDN', quantity: 1, maxPriceCents: 2_705 }),
      RESTRICTED,
    )
    expect(await portfolio(session)).toEqual(before)
    // Selling it is not restricted.
    expect((await session.call('sell_stock', { symbol: 'GRDN', quantity: 1 })).text).toContain(
      'You hold 0 GRDN, not 1.',
    )
    await session.close()

    const newcomer = await newPerson('newcomer@trading.example')
    const fresh = await connect('Newcomer agent (v2 SDK)', newcomer)
    expect((await portfolio(fresh)).limitCents).toBeNull()
    await expectHeld(
      await fresh.call('buy_stock', { symbol: 'LMNL', quantity: 1, maxPriceCents: 875 }),
      OVER_LIMIT,
    )
    expect((await portfolio(fresh)).holdings).toEqual([])
    await fresh.close()
  })

  it("an operator edits the policy (ZEKO restricted too); a restart keeps the operator's version", async () => {
    const { deps } = demo.deputy
    const restricted = (await deps.policies.list()).find(
      (policy) => policy.id === 'trading.restricted-stock',
    )
    expect(restricted?.text).toContain('["GRDN"].contains(context.arguments.symbol)')
    await deps.policies.put(
      (restricted?.text ?? '').replace('["GRDN"]', '["GRDN", "ZEKO"]'),
      OPERATOR,
    )
    await deps.policy.refresh()
    const session = await connect('Edited policy agent (v2 SDK)')
    await expectHeld(
      await session.call('buy_stock', { symbol: 'ZEKO', quantity: 1, maxPriceCents: 5_340 }),
      RESTRICTED,
    )
    await session.close()

    demo = await demo.restart()
    const again = (await demo.deputy.deps.policies.list()).find(
      (policy) => policy.id === 'trading.restricted-stock',
    )
    expect(again?.text).toContain('["GRDN", "ZEKO"]')
    const after = await connect('After restart agent (v2 SDK)')
    await expectHeld(
      await after.call('buy_stock', { symbol: 'ZEKO', quantity: 1, maxPriceCents: 5_340 }),
      RESTRICTED,
    )
    // The portfolio outlived the restart: it is in Deputy's database.
    expect((await portfolio(after)).holdings.map((h) => h.symbol)).toEqual(['ATKO', 'LMNL'])
    await after.close()
    expect((await verifyAuditChain(demo.deputy.deps.store)).ok).toBe(true)
  })
})
