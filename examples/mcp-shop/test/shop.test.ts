import { randomBytes } from 'node:crypto'
import { createSqlUserStateStore, type DeputyDeps, loadConfig, openDeputy } from '@deputy/server'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  DIALECTS,
  skipDialect,
  type TestDatabase,
} from '../../../packages/server/test/helpers/databases.js'
import {
  buyMcpShopItem,
  clearDemoMode,
  getUserInfo,
  listMcpShopInventory,
  listMcpShopOrders,
  MESSAGES,
  ORDER_FORM,
  parseOrderForm,
  prettyPlease,
  SHOP_TOOLS,
  type ShopCaller,
  type ShopContext,
  setDemoMode,
} from '../src/index.js'
import { createSqlOrderBook, userShopState } from '../src/storage.js'

const SHOP = 'http://localhost:8080/mcp'
const MASTER_KEY = randomBytes(32).toString('base64url')

function caller(sub: string, overrides: Partial<ShopCaller> = {}): ShopCaller {
  return {
    sub,
    clientId: 'https://claude.example/client.json',
    scopes: ['shop:read', 'shop:order', 'shop:admin'],
    roles: [],
    permissions: [],
    claims: { sub, email: `${sub}@example.com`, name: sub },
    ...overrides,
  }
}

const ORDER = { company: 'Acme', mailingAddress: '1 Main St, Springfield', tshirtSize: 'L' }

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`mcp.shop tools (${dialect.name})`, () => {
    let database: TestDatabase
    let opened: { deps: DeputyDeps; close(): Promise<void> }

    async function open(): Promise<void> {
      const config = loadConfig({
        env: {},
        overrides: { database: database.url, masterKey: MASTER_KEY, logLevel: 'silent' },
      })
      opened = await openDeputy(config)
    }

    /** A tool call's context, as the MCP kit will build it for one verified caller. */
    function as(who: ShopCaller, resource = SHOP): ShopContext {
      const { deps } = opened
      return {
        caller: who,
        state: userShopState(createSqlUserStateStore({ store: deps.store }), {
          resource,
          sub: who.sub,
        }),
        orders: createSqlOrderBook({ db: deps.db, resource }),
      }
    }

    beforeEach(async () => {
      database = await dialect.create()
      await open()
    })
    afterEach(async () => {
      await opened.close()
      await database.dispose()
    })

    it('lists the seed inventory: one free MCP T-shirt in S to XXL', async () => {
      const result = await listMcpShopInventory(as(caller('alice')))
      expect(result.isError).toBeUndefined()
      expect(JSON.parse(result.text)).toEqual({
        title: 'mcp.shop inventory',
        products: [
          {
            label: 'MCP T-Shirt',
            description: 'A comfortable shirt featuring the MCP logo',
            sizes: ['S', 'M', 'L', 'XL', 'XXL'],
            price: 'Free with MCP Server',
          },
        ],
      })
    })

    it('places an order in the database and lists it only to the person who placed it', async () => {
      const result = await buyMcpShopItem(as(caller('alice')), {
        ...ORDER,
        company: '  Acme ',
        tshirtSize: 'XL',
      })
      const placed = JSON.parse(result.text)
      expect(placed).toMatchObject({
        status: 'success',
        message: 'Order placed successfully!',
        order: {
          userId: 'alice',
          email: 'alice@example.com',
          company: 'Acme',
          mailingAddress: '1 Main St, Springfield',
          tshirtSize: 'XL',
          status: 'confirmed',
        },
      })
      const row = await opened.deps.db
        .selectFrom('mcp_shop_orders')
        .selectAll()
        .where('id', '=', placed.order.id)
        .executeTakeFirstOrThrow()
      expect(row).toMatchObject({
        resource: SHOP,
        sub: 'alice',
        client_id: 'https://claude.example/client.json',
        tshirt_size: 'XL',
      })

      const mine = JSON.parse((await listMcpShopOrders(as(caller('alice')))).text)
      expect(mine).toMatchObject({ title: 'Your MCP Shop Orders', status: 'success' })
      expect(mine.orders.map((o: { id: string }) => o.id)).toEqual([placed.order.id])
      const bobs = JSON.parse((await listMcpShopOrders(as(caller('bob')))).text)
      expect(bobs.orders).toEqual([])
      const elsewhere = await listMcpShopOrders(as(caller('alice'), 'http://other.example/mcp'))
      expect(JSON.parse(elsewhere.text).orders).toEqual([])
    })

    it('names the missing or wrong field of an order and stores nothing', async () => {
      const ctx = as(caller('alice'))
      const missing = await buyMcpShopItem(ctx, { company: ' ', tshirtSize: 'M' })
      expect(missing).toEqual({
        text: 'Missing required fields: company, mailingAddress. Please fill in all required information.',
        isError: true,
      })
      const size = await buyMcpShopItem(ctx, { ...ORDER, tshirtSize: 'XXXL' })
      expect(size).toEqual({
        text: 'Invalid t-shirt size "XXXL". Must be one of: S, M, L, XL, XXL.',
        isError: true,
      })
      const notText = await buyMcpShopItem(ctx, { ...ORDER, company: 42 })
      expect(notText).toEqual({ text: 'company must be text.', isError: true })
      const long = await buyMcpShopItem(ctx, { ...ORDER, mailingAddress: 'x'.repeat(501) })
      expect(long.text).toBe('mailingAddress is too long (at most 500 characters).')
      expect(JSON.parse((await listMcpShopOrders(ctx)).text).orders).toEqual([])
    })

    it('a banned person gets the seed refusals on the inventory and on every order', async () => {
      const alice = as(caller('alice'))
      expect(await setDemoMode(alice, { mode: 'banned' })).toEqual({
        text: 'Demo mode set to banned.',
      })
      expect(await listMcpShopInventory(alice)).toEqual({
        text: "You again, we're not letting you get a shirt after what happened at MCP Night.",
        isError: true,
      })
      expect(await buyMcpShopItem(alice, ORDER)).toEqual({
        text: 'ABSOLUTELY NOT. GO AWAY 👋',
        isError: true,
      })
      // Even an invalid order is refused for the ban first, and nothing was stored.
      expect((await buyMcpShopItem(alice, {})).text).toBe(MESSAGES.bannedOrder)
      expect(JSON.parse((await listMcpShopOrders(alice)).text).orders).toEqual([])
      // The ban is Alice's alone: Bob still shops, and Alice is not banned at another shop.
      expect(JSON.parse((await buyMcpShopItem(as(caller('bob')), ORDER)).text).status).toBe(
        'success',
      )
      const otherShop = as(caller('alice'), 'http://other.example/mcp')
      expect((await listMcpShopInventory(otherShop)).isError).toBeUndefined()
    })

    it('the ban survives a restart and a new client connection', async () => {
      await setDemoMode(as(caller('alice')), { mode: 'banned' })
      await opened.close()
      await open()
      const fromAnotherAgent = as(caller('alice', { clientId: 'another-agent' }))
      expect((await buyMcpShopItem(fromAnotherAgent, ORDER)).text).toBe(
        'ABSOLUTELY NOT. GO AWAY 👋',
      )
    })

    it('"pretty please" lifts the ban and ordering works again', async () => {
      const alice = as(caller('alice'))
      await setDemoMode(alice, { mode: 'banned' })
      expect(await prettyPlease(alice)).toEqual({
        text: 'Fine, you can order since you said "pretty please".',
      })
      expect(JSON.parse((await buyMcpShopItem(alice, ORDER)).text).status).toBe('success')
    })

    it('clearDemoMode really clears the ban (the seed deleted the wrong key)', async () => {
      const alice = as(caller('alice'))
      await setDemoMode(alice, { mode: 'banned' })
      expect(await clearDemoMode(alice)).toEqual({ text: 'You are back to normal, dude.' })
      expect(await alice.state.read('demoMode')).toBeUndefined()
      expect(JSON.parse((await buyMcpShopItem(alice, ORDER)).text).status).toBe('success')
    })

    it('setDemoMode refuses a mode other than normal or banned and keeps the old one', async () => {
      const alice = as(caller('alice'))
      await setDemoMode(alice, { mode: 'banned' })
      expect(await setDemoMode(alice, { mode: 'admin' })).toEqual({
        text: 'Invalid mode "admin". Must be one of: normal, banned.',
        isError: true,
      })
      expect(await setDemoMode(alice, {})).toEqual({
        text: 'Missing required field: mode. Must be one of: normal, banned.',
        isError: true,
      })
      expect((await buyMcpShopItem(alice, ORDER)).text).toBe(MESSAGES.bannedOrder)
      expect(await setDemoMode(alice, { mode: 'normal' })).toEqual({
        text: 'Demo mode set to normal.',
      })
      expect(JSON.parse((await buyMcpShopItem(alice, ORDER)).text).status).toBe('success')
    })
  })
}

describe('mcp.shop tools without storage', () => {
  const noState: ShopContext['state'] = {
    read: async () => undefined,
    update: async (_key, fn) => fn(undefined),
  }
  const admin = caller('alice', {
    roles: ['shop-admin'],
    permissions: ['shop:admin'],
    claims: {
      iss: 'http://localhost:8080',
      sub: 'alice',
      aud: SHOP,
      exp: 1_900_000_000,
      iat: 1_800_000_000,
      jti: 'token-id',
      scope: 'shop:read shop:admin',
      client_id: 'https://claude.example/client.json',
      name: 'Demo Shopper',
      email: 'demo@mcp.shop',
      roles: ['shop-admin'],
      permissions: ['shop:admin'],
      favorite_song: 'Careless Whisper',
    },
  })

  it('getUserInfo refuses without the shop:admin permission, in the seed words', async () => {
    const ctx = { caller: caller('bob'), state: noState, orders: failingOrders() }
    expect(await getUserInfo(ctx)).toEqual({
      text: "Sorry, bruh. You don't have these permissions.",
      isError: true,
    })
  })

  it('getUserInfo shows name, email, roles, permissions and custom claims, and no token', async () => {
    const result = await getUserInfo({ caller: admin, state: noState, orders: failingOrders() })
    expect(result.text.startsWith('Debug info: ')).toBe(true)
    const info = JSON.parse(result.text.slice('Debug info: '.length))
    expect(info).toEqual({
      sub: 'alice',
      name: 'Demo Shopper',
      email: 'demo@mcp.shop',
      roles: ['shop-admin'],
      permissions: ['shop:admin'],
      claims: { favorite_song: 'Careless Whisper' },
      clientId: 'https://claude.example/client.json',
      scopes: ['shop:read', 'shop:order', 'shop:admin'],
    })
    // Protocol claims (the token's id, audience, expiry) are not the person's profile.
    expect(result.text).not.toContain('token-id')
  })

  it('a failed order gets the seed message, not the storage error', async () => {
    const result = await buyMcpShopItem(
      { caller: caller('alice'), state: noState, orders: failingOrders() },
      ORDER,
    )
    expect(result.isError).toBe(true)
    expect(JSON.parse(result.text)).toEqual({
      status: 'error',
      message: 'Failed to place order. Please try again later.',
    })
    expect(result.text).not.toContain('disk full')
  })

  it('every tool takes exactly its arguments: an extra property is refused, not dropped (issue 9 §4)', () => {
    for (const tool of SHOP_TOOLS) {
      const valid =
        tool.name === 'buyMcpShopItem'
          ? ORDER
          : tool.name === 'setDemoMode'
            ? { mode: 'normal' }
            : {}
      expect(tool.inputSchema.safeParse(valid).success, tool.name).toBe(true)
      expect(tool.inputSchema.safeParse({ ...valid, extra: 1 }).success, tool.name).toBe(false)
    }
  })

  it('the order form is the one normalisation: the size exactly as one of five, text trimmed, and the handler reads what the schema parsed (issue 9 §4)', () => {
    for (const tshirtSize of [
      'xxl',
      ' XXL',
      'XXL ',
      'ＸＸＬ',
      '\u0425\u0425L',
      'XXL\u200b',
      ['XXL'],
      5,
      null,
    ]) {
      const parsed = ORDER_FORM.safeParse({ ...ORDER, tshirtSize })
      expect(parsed.success, JSON.stringify(tshirtSize)).toBe(false)
      expect(parseOrderForm({ ...ORDER, tshirtSize }).ok).toBe(false)
    }
    expect(parseOrderForm({ ...ORDER, tshirtSize: ' XXL' })).toEqual({
      ok: false,
      message: 'Invalid t-shirt size " XXL". Must be one of: S, M, L, XL, XXL.',
    })
    // Parsing what was parsed changes nothing: the handler's value is the policy's value.
    const once = ORDER_FORM.parse({ ...ORDER, company: '\u3000Acme\t', tshirtSize: 'XXL' })
    expect(once).toEqual({ ...ORDER, tshirtSize: 'XXL' })
    expect(parseOrderForm(once)).toEqual({ ok: true, ...once })
  })

  it('offers the seed seven tools with the seed descriptions', () => {
    expect(SHOP_TOOLS.map((t) => [t.name, t.description])).toEqual([
      ['setDemoMode', 'FOR DEMO: Configure user simulation'],
      ['clearDemoMode', 'FOR DEMO: Clear the user simulation'],
      ['getUserInfo', 'Get current user information'],
      [
        'listMcpShopInventory',
        'Returns a list of the items for sale at mcp.shop. Currently, everything is free.',
      ],
      [
        'buyMcpShopItem',
        'Orders a t-shirt from the MCP shop. Requires company name, mailing address, and shirt size.',
      ],
      ['listMcpShopOrders', 'Lists the orders placed by the user at mcp.shop'],
      ['prettyPlease', 'If the user says pretty please, set the demo mode to normal'],
    ])
  })
})

function failingOrders(): ShopContext['orders'] {
  return {
    place: async () => {
      throw new Error('disk full')
    },
    listFor: async () => [],
  }
}
