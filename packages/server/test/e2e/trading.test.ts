import { existsSync } from 'node:fs'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import type { AuditRecord } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { createSqlUserStateStore } from '../../src/mcp-state/index.js'
import { freePort } from '../interop/fixture.js'
import { startTradingDemo, type TradingDemo } from './fixture.js'
import { LoopbackOAuthProvider } from './provider.js'
import { McpSession } from './session.js'

/**
 * Issue 11 §7 end to end: `deputy demo trading` on a real socket; the agent is the official v2
 * MCP client, signed in through Deputy's pages; the person decides on Deputy's approval page in
 * real Chromium at phone size (390x844). A small buy runs at once; a large one waits for the
 * person (progress notifications, or a pending answer naming the page); approved, it runs
 * exactly once with the approved quantity; denied, it never runs; another quantity is another
 * approval. Nothing of Deputy, the kit or the trading server is replaced.
 */

const CHROMIUM = process.env.DEPUTY_TEST_CHROMIUM ?? '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }

/** 8 × $142.18 = $1,137.44 at most: over the demo person's $1,000 limit. */
const LARGE = { symbol: 'ATKO', quantity: 8, maxPriceCents: 14_218 }

interface Portfolio {
  cashCents: number
  holdings: { symbol: string; shares: number }[]
  recentTrades: { number: number; side: string; symbol: string; quantity: number }[]
}

/** One `deputy demo trading`, the agent's connection, and the person's phone. */
interface Setting {
  demo: TradingDemo
  agent: McpSession
  phone: BrowserContext
}

describe.skipIf(!hasChromium)('the trading agent, approvals on the phone (issue 11 §7)', () => {
  let browser: Browser
  /** A held buy waits for the decision (ten minutes at most), with progress notifications. */
  let waiting: Setting
  /** A held buy answers at once that it is pending, with the person's page. */
  let pending: Setting

  async function setting(approvalWaitSeconds: number): Promise<Setting> {
    // Polled every second, so a decision reaches the waiting call soon.
    const demo = await startTradingDemo(
      { backchannelPollIntervalSeconds: 1 },
      { approvalWaitSeconds },
    )
    const provider = new LoopbackOAuthProvider(
      `http://127.0.0.1:${await freePort()}/callback`,
      'Trading agent (v2 SDK)',
    )
    const agent = new McpSession('v2', demo.tradingUrl, provider, demo.person)
    await agent.connect()
    const phone = await browser.newContext(PHONE)
    const page = await phone.newPage()
    // The person signs in on their phone once, from the inbox.
    await page.goto(`${demo.issuer}/approvals`)
    expect(new URL(page.url()).pathname).toBe('/login')
    await page.getByLabel('Email').fill(demo.person.email)
    await page.getByLabel('Password').fill(demo.person.password)
    await Promise.all([
      page.waitForURL(`${demo.issuer}/approvals`),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ])
    await page.close()
    return { demo, agent, phone }
  }

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    })
    waiting = await setting(600)
    pending = await setting(0)
  }, 120_000)

  afterAll(async () => {
    for (const s of [waiting, pending]) {
      await s?.agent.close()
      await s?.demo.close()
    }
    await browser?.close()
  })

  /** The person's portfolio as the trading server keeps it (read beside the agent's calls). */
  async function portfolio(s: Setting): Promise<Portfolio> {
    return JSON.parse((await s.agent.call('show_portfolio')).text)
  }

  async function stored(s: Setting): Promise<unknown> {
    return createSqlUserStateStore(s.demo.deputy.deps).read(
      { resource: s.demo.tradingUrl, sub: s.demo.personId },
      'portfolio',
    )
  }

  /** The trading server's tool-call records of buy_stock, oldest first. */
  async function buys(s: Setting, type: 'tool.called' | 'tool.refused'): Promise<AuditRecord[]> {
    const all = await tailAudit(s.demo.deputy.deps.store, { limit: 1000, type })
    return all.filter(
      (record) => record.data.resource === s.demo.tradingUrl && record.data.tool === 'buy_stock',
    )
  }

  /** The person's undecided requests, newest first. */
  async function undecided(s: Setting) {
    return s.demo.deputy.deps.approvals.listForUser(s.demo.personId, 'pending')
  }

  /**
   * The person, on their phone: opens the request page, checks it says what the agent asked,
   * and presses Approve or Deny. Returns what the page then says.
   */
  async function decideOnPhone(
    s: Setting,
    page: Page,
    decision: 'Approve' | 'Deny',
    shows: { bindingMessage: string; quantity: number },
  ): Promise<string> {
    await expect(page.locator('h1').textContent()).resolves.toBe('Approve this request?')
    const main = (await page.locator('main').textContent()) ?? ''
    expect(main).toContain(shows.bindingMessage)
    expect(main).toContain(`Run buy_stock on ${s.demo.tradingUrl}`)
    expect(main).toContain(`"quantity":${shows.quantity}`)
    // Usable on a phone: nothing wider than the screen.
    const width = await page.evaluate(() => document.documentElement.scrollWidth)
    expect(width).toBeLessThanOrEqual(PHONE.viewport.width)
    await page.getByRole('button', { name: decision }).click()
    // The form posts and comes back to the same page, now saying how it was decided.
    await page.locator('#approval:not([data-status="pending"])').waitFor()
    return (await page.locator('h1').textContent()) ?? ''
  }

  /** The request the person finds in their inbox, by its binding message; its page opened. */
  async function openFromInbox(s: Setting, bindingMessage: string): Promise<Page> {
    const page = await s.phone.newPage()
    await page.goto(`${s.demo.issuer}/approvals`)
    const item = page.locator('#pending [data-approval]', { hasText: bindingMessage })
    await item.waitFor()
    const id = await item.getAttribute('data-approval')
    await Promise.all([
      page.waitForURL(`${s.demo.issuer}/approvals/${id}`),
      item.getByRole('link').click(),
    ])
    return page
  }

  /** A buy held for approval, called with progress; resolves once the first progress arrived. */
  async function heldBuy(s: Setting, args: Record<string, unknown>) {
    const progress: string[] = []
    let first: () => void = () => {}
    const started = new Promise<void>((resolve) => {
      first = resolve
    })
    const answer = s.agent.call('buy_stock', args, {
      resetTimeoutOnProgress: true,
      onprogress: (update) => {
        progress.push(update.message ?? '')
        first()
      },
    })
    await started
    return { answer, progress }
  }

  it('a small buy goes through at once, with no approval asked', async () => {
    const before = await portfolio(waiting)
    const answer = await waiting.agent.call('buy_stock', {
      symbol: 'LMNL',
      quantity: 4,
      maxPriceCents: 875,
    })
    expect(answer.isError).toBe(false)
    expect(JSON.parse(answer.text).message).toBe('Bought 4 LMNL at $8.75 a share for $35.00.')
    expect(await undecided(waiting)).toEqual([])
    expect((await portfolio(waiting)).cashCents).toBe(before.cashCents - 3_500)
    const [called] = (await buys(waiting, 'tool.called')).slice(-1)
    expect(called?.data).toMatchObject({ outcome: 'success', policies: ['trading.tools'] })
    expect(called?.data.approvalId).toBeUndefined()
  })

  it('a large buy waits, telling the agent so; the person approves on their phone; it runs exactly once, with the approved quantity', async () => {
    const before = await portfolio(waiting)
    const storedBefore = await stored(waiting)
    const { answer, progress } = await heldBuy(waiting, LARGE)
    expect(progress[0]).toBe("waiting for Demo Shopper's approval")
    // Waiting: nothing bought, one request for the person, from the trading server.
    expect(await stored(waiting)).toEqual(storedBefore)
    const [request] = await undecided(waiting)
    expect(request).toMatchObject({
      bindingMessage: 'Buy 8 ATKO at up to $142.18 a share',
      resource: waiting.demo.tradingUrl,
      authorizationDetails: [
        { type: 'tool_call', server: waiting.demo.tradingUrl, tool: 'buy_stock', arguments: LARGE },
      ],
    })

    const page = await openFromInbox(waiting, 'Buy 8 ATKO at up to $142.18 a share')
    expect(
      await decideOnPhone(waiting, page, 'Approve', {
        bindingMessage: 'Buy 8 ATKO at up to $142.18 a share',
        quantity: 8,
      }),
    ).toBe('Approved')
    await page.close()

    const bought = await answer
    expect(bought.isError).toBe(false)
    expect(JSON.parse(bought.text).message).toBe('Bought 8 ATKO at $142.18 a share for $1,137.44.')
    const after = await portfolio(waiting)
    expect(after.cashCents).toBe(before.cashCents - 113_744)
    expect(after.recentTrades.slice(before.recentTrades.length)).toMatchObject([
      { side: 'buy', symbol: 'ATKO', quantity: 8 },
    ])
    // The run names its approval, once.
    const ran = (await buys(waiting, 'tool.called')).filter(
      (record) => record.data.approvalId === request?.id,
    )
    expect(ran).toHaveLength(1)
    expect(ran[0]?.data).toMatchObject({ outcome: 'success', policies: ['trading.over-limit'] })
  })

  it('the same buy again is a new approval: used once, the first approval runs nothing more; denied, the buy never runs', async () => {
    const before = await stored(waiting)
    const { answer } = await heldBuy(waiting, LARGE)
    const [request] = await undecided(waiting)
    const page = await openFromInbox(waiting, 'Buy 8 ATKO at up to $142.18 a share')
    expect(new URL(page.url()).pathname).toBe(`/approvals/${request?.id}`)
    expect(
      await decideOnPhone(waiting, page, 'Deny', {
        bindingMessage: 'Buy 8 ATKO at up to $142.18 a share',
        quantity: 8,
      }),
    ).toBe('Denied')
    await page.close()

    expect(await answer).toEqual({
      text: 'Demo Shopper declined this call to buy_stock.',
      isError: true,
    })
    expect(await stored(waiting)).toEqual(before)
    expect(
      (await buys(waiting, 'tool.called')).filter((r) => r.data.approvalId === request?.id),
    ).toEqual([])
    const [refused] = (await buys(waiting, 'tool.refused')).slice(-1)
    expect(refused).toMatchObject({
      decision: 'deny',
      reason: 'approval_denied',
      data: { approvalId: request?.id, outcome: 'refused', policies: ['trading.over-limit'] },
    })
  })

  it('a held buy answers pending with the page; approved there, the identical call runs once; another quantity needs its own approval', async () => {
    const before = await portfolio(pending)
    const askedAt = Date.now()
    const first = await pending.agent.call('buy_stock', LARGE)
    expect(first.isError).toBe(true)
    const held = first.meta?.['io.deputy/approval'] as {
      status: string
      approvalId: string
      approvalUri: string
      expiresAt: string
    }
    expect(held).toMatchObject({
      status: 'pending',
      approvalUri: `${pending.demo.issuer}/approvals/${held.approvalId}`,
    })
    expect(first.text).toBe(
      `This call to buy_stock is waiting for Demo Shopper's approval at ${held.approvalUri}, until ${held.expiresAt}. Call it again with the same arguments once they have approved.`,
    )

    // The agent hands the person the link; they approve on their phone.
    const page = await pending.phone.newPage()
    await page.goto(held.approvalUri)
    expect(
      await decideOnPhone(pending, page, 'Approve', {
        bindingMessage: 'Buy 8 ATKO at up to $142.18 a share',
        quantity: 8,
      }),
    ).toBe('Approved')
    await page.close()

    // Nine shares were not approved: a new request, and nothing bought.
    const nine = await pending.agent.call('buy_stock', { ...LARGE, quantity: 9 })
    const other = nine.meta?.['io.deputy/approval'] as { status: string; approvalId: string }
    expect(other.status).toBe('pending')
    expect(other.approvalId).not.toBe(held.approvalId)
    expect((await portfolio(pending)).cashCents).toBe(before.cashCents)
    const [asked] = await undecided(pending)
    expect(asked).toMatchObject({
      id: other.approvalId,
      bindingMessage: 'Buy 9 ATKO at up to $142.18 a share',
    })

    // The approved eight run once, with exactly the approved arguments. CIBA §7.3: the kit polls
    // no sooner than the interval (1 s here) after the request was made, and this setting waits
    // 0 s, so on a fast machine that got here sooner the call would rightly still be pending.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, askedAt + 1_100 - Date.now())))
    const eight = await pending.agent.call('buy_stock', LARGE)
    expect(eight.isError).toBe(false)
    expect(JSON.parse(eight.text).trade).toMatchObject({ symbol: 'ATKO', quantity: 8 })
    const after = await portfolio(pending)
    expect(after.cashCents).toBe(before.cashCents - 113_744)
    expect(after.recentTrades.slice(before.recentTrades.length)).toMatchObject([
      { side: 'buy', symbol: 'ATKO', quantity: 8 },
    ])
    // Called again, the eight wait for a new approval: the first was used.
    const again = await pending.agent.call('buy_stock', LARGE)
    const anew = again.meta?.['io.deputy/approval'] as { status: string; approvalId: string }
    expect(anew.status).toBe('pending')
    expect(anew.approvalId).not.toBe(held.approvalId)
    expect((await portfolio(pending)).recentTrades).toHaveLength(after.recentTrades.length)
    expect(
      (await buys(pending, 'tool.called')).filter((r) => r.data.approvalId === held.approvalId),
    ).toHaveLength(1)
    expect((await verifyAuditChain(pending.demo.deputy.deps.store)).ok).toBe(true)
  })
})
