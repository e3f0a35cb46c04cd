import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../interop/fixture.js'
import { type ShopDemo, startShopDemo } from './fixture.js'
import { LoopbackOAuthProvider } from './provider.js'
import { McpSession } from './session.js'

/**
 * Issue 4 §4, second client: the official v1 TypeScript MCP SDK (`@modelcontextprotocol/sdk`,
 * spec 2025-11-25, served by the kit's stateless fallback) against `deputy demo` on a real
 * socket. It registers dynamically (RFC 7591), does PKCE through the real sign-in and consent
 * pages and plays the seed; then Deputy restarts on the same database, and the ban is still there.
 */

const ORDER = { company: 'Initech', mailingAddress: '4120 Freidrich Lane, Austin', tshirtSize: 'M' }
const BANNED = { text: 'ABSOLUTELY NOT. GO AWAY 👋', isError: true }

describe('mcp.shop with the v1 MCP SDK (@modelcontextprotocol/sdk)', () => {
  let demo: ShopDemo

  beforeAll(async () => {
    demo = await startShopDemo()
  })

  afterAll(async () => {
    await demo?.close()
  })

  async function newSession(name: string): Promise<McpSession> {
    const provider = new LoopbackOAuthProvider(
      `http://127.0.0.1:${await freePort()}/callback`,
      name,
    )
    const session = new McpSession('v1', demo.mcpUrl, provider, demo.person)
    await session.connect()
    return session
  }

  it('registers dynamically and plays the seed; the ban holds for a new connection and across a restart', async () => {
    const session = await newSession('Shop agent (v1 SDK)')
    // Dynamic registration happened, and the person consented on the real page.
    expect(session.provider.clientId).toMatch(/\S/)
    const consent = session.authorizations[0]?.find((page) => page.kind === 'consent')?.text
    expect(consent).toContain('Shop agent (v1 SDK)')
    expect(consent).toContain('This app registered itself')
    expect(session.provider.authorizationUrls[0]?.searchParams.get('resource')).toBe(demo.mcpUrl)

    expect(await session.listTools()).toContain('buyMcpShopItem')
    expect(JSON.parse((await session.call('listMcpShopInventory')).text).title).toBe(
      'mcp.shop inventory',
    )
    const incomplete = await session.call('buyMcpShopItem', {
      mailingAddress: ORDER.mailingAddress,
      tshirtSize: ORDER.tshirtSize,
    })
    expect(incomplete.isError).toBe(true)
    expect(incomplete.text).toContain(
      'company: Missing required field. Please fill in all required information.',
    )
    const placed = await session.call('buyMcpShopItem', ORDER)
    expect(JSON.parse(placed.text)).toMatchObject({
      status: 'success',
      message: 'Order placed successfully!',
      order: ORDER,
    })
    const orders = JSON.parse((await session.call('listMcpShopOrders')).text).orders
    expect(orders).toEqual([expect.objectContaining(ORDER)])
    expect((await session.call('getUserInfo')).text).toContain(
      '"favorite_song": "Careless Whisper"',
    )

    expect((await session.call('setDemoMode', { mode: 'banned' })).text).toBe(
      'Demo mode set to banned.',
    )
    expect(await session.call('buyMcpShopItem', ORDER)).toEqual(BANNED)

    const second = await newSession('Second agent (v1 SDK)')
    expect(second.provider.clientId).not.toBe(session.provider.clientId)
    expect(await second.call('buyMcpShopItem', ORDER)).toEqual(BANNED)
    await second.close()

    // Deputy stops and starts again on the same database: the ban and the order are still there,
    // and the token the client holds is still good (signing keys are in the database too).
    await session.close()
    demo = await demo.restart()
    const afterRestart = new McpSession('v1', demo.mcpUrl, session.provider, demo.person)
    await afterRestart.connect()
    expect(afterRestart.authorizations).toEqual([])
    expect(await afterRestart.call('buyMcpShopItem', ORDER)).toEqual(BANNED)
    expect(JSON.parse((await afterRestart.call('listMcpShopOrders')).text).orders).toHaveLength(1)

    expect((await afterRestart.call('prettyPlease')).text).toBe(
      'Fine, you can order since you said "pretty please".',
    )
    expect((await afterRestart.call('buyMcpShopItem', ORDER)).isError).toBe(false)
    expect(JSON.parse((await afterRestart.call('listMcpShopOrders')).text).orders).toHaveLength(2)
    await afterRestart.close()
  })
})
