import {
  auth,
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { signInAndConsent } from '../helpers/sign-in.js'
import { freePort } from '../interop/fixture.js'
import {
  type ClientMetadataHost,
  type ShopDemo,
  serveClientMetadata,
  startShopDemo,
} from './fixture.js'
import { LoopbackOAuthProvider } from './provider.js'
import { McpSession } from './session.js'

/**
 * Issue 4 §4: the official v2 TypeScript MCP client against `deputy demo` — Deputy and mcp.shop on
 * one origin, on a real socket — with nothing of ours replaced. The client discovers the shop's
 * Protected Resource Metadata and Deputy from the 401, identifies itself with a Client ID Metadata
 * Document served here on loopback (Deputy's development setting
 * `dangerouslyAllowHttpLoopbackClientMetadata`), or registers dynamically, does PKCE through the
 * real sign-in and consent pages, and plays the seed demo.
 */

const ORDER = {
  company: 'Acme Rockets',
  mailingAddress: '1 Loop Road, Springfield',
  tshirtSize: 'L',
}

/** The shop's scopes in a scope string, sorted. */
function shopScopes(scope: string | null | undefined): string[] {
  return (scope ?? '')
    .split(' ')
    .filter((s) => s.startsWith('shop:'))
    .sort()
}

describe('mcp.shop with the v2 MCP client (@modelcontextprotocol/client)', () => {
  let demo: ShopDemo
  let cimd: ClientMetadataHost

  beforeAll(async () => {
    demo = await startShopDemo({ dangerouslyAllowHttpLoopbackClientMetadata: true })
    cimd = await serveClientMetadata('Shop agent (v2 SDK)')
  })

  afterAll(async () => {
    await cimd?.close()
    await demo?.close()
  })

  it('plays the seed: inventory, orders, getUserInfo, the ban that follows the person to a new connection, pretty please', async () => {
    const provider = new LoopbackOAuthProvider(cimd.redirectUri, 'unused', {
      url: cimd.clientId,
      issuer: demo.issuer,
    })
    const session = new McpSession('v2', demo.mcpUrl, provider, demo.person)
    await session.connect()

    // Discovery went by the 401's resource_metadata, and the person saw the real pages.
    const challenge = session.log.find((exchange) => exchange.status === 401)
    expect(challenge?.wwwAuthenticate).toContain(
      `resource_metadata="${demo.issuer}/.well-known/oauth-protected-resource/mcp"`,
    )
    const [pages] = session.authorizations
    expect(pages?.map((page) => page.kind).slice(0, 2)).toEqual(['login', 'consent'])
    const consent = pages?.find((page) => page.kind === 'consent')?.text ?? ''
    // The name comes from the metadata document Deputy fetched from the client's URL.
    expect(consent).toContain('Shop agent (v2 SDK)')
    expect(consent).toContain("See the shop's inventory and your orders")
    expect(consent).toContain('Order T-shirts for you')
    expect(consent).toContain("See your account details and switch the shop's demo mode")
    expect(cimd.fetches()).toBeGreaterThan(0)
    expect(provider.authorizationUrls[0]?.searchParams.get('resource')).toBe(demo.mcpUrl)
    expect(provider.authorizationUrls[0]?.searchParams.get('code_challenge_method')).toBe('S256')

    expect(await session.listTools()).toEqual([
      'setDemoMode',
      'clearDemoMode',
      'getUserInfo',
      'listMcpShopInventory',
      'buyMcpShopItem',
      'listMcpShopOrders',
      'prettyPlease',
    ])

    const inventory = await session.call('listMcpShopInventory')
    expect(inventory.isError).toBe(false)
    expect(JSON.parse(inventory.text)).toMatchObject({
      title: 'mcp.shop inventory',
      products: [{ label: 'MCP T-Shirt', sizes: ['S', 'M', 'L', 'XL', 'XXL'] }],
    })

    const incomplete = await session.call('buyMcpShopItem', {
      mailingAddress: ORDER.mailingAddress,
      tshirtSize: ORDER.tshirtSize,
    })
    expect(incomplete.isError).toBe(true)
    expect(incomplete.text).toContain(
      'company: Missing required field. Please fill in all required information.',
    )

    const placed = await session.call('buyMcpShopItem', ORDER)
    expect(placed.isError).toBe(false)
    expect(JSON.parse(placed.text)).toMatchObject({
      status: 'success',
      message: 'Order placed successfully!',
      order: { ...ORDER, userId: demo.personId, email: demo.person.email, status: 'confirmed' },
    })

    const orders = JSON.parse((await session.call('listMcpShopOrders')).text)
    expect(orders).toMatchObject({ title: 'Your MCP Shop Orders', status: 'success' })
    expect(orders.orders).toHaveLength(1)
    expect(orders.orders[0]).toMatchObject(ORDER)

    const info = await session.call('getUserInfo')
    expect(info.isError).toBe(false)
    expect(info.text).toContain('Debug info:')
    expect(info.text).toContain('"favorite_song": "Careless Whisper"')
    expect(info.text).toContain('"shop-admin"')
    expect(info.text).toContain('"shop:admin"')
    // Claims only: the access token never lands in the model's context.
    expect(info.text).not.toContain(provider.accessToken ?? 'no token')

    expect((await session.call('setDemoMode', { mode: 'banned' })).text).toBe(
      'Demo mode set to banned.',
    )
    expect(await session.call('buyMcpShopItem', ORDER)).toEqual({
      text: 'ABSOLUTELY NOT. GO AWAY 👋',
      isError: true,
    })
    expect(await session.call('listMcpShopInventory')).toEqual({
      text: "You again, we're not letting you get a shirt after what happened at MCP Night.",
      isError: true,
    })

    // A second, new connection for the same person: another agent, registered dynamically, with
    // its own sign-in and consent. The ban belongs to the person, not to a session or client.
    const other = new LoopbackOAuthProvider(
      `http://127.0.0.1:${await freePort()}/callback`,
      'Another agent (v2 SDK, dynamic registration)',
    )
    const second = new McpSession('v2', demo.mcpUrl, other, demo.person)
    await second.connect()
    expect(other.clientId).toBeDefined()
    expect(other.clientId).not.toBe(cimd.clientId)
    expect(second.authorizations[0]?.map((page) => page.kind)).toContain('consent')
    expect(await second.call('buyMcpShopItem', ORDER)).toEqual({
      text: 'ABSOLUTELY NOT. GO AWAY 👋',
      isError: true,
    })

    expect((await session.call('prettyPlease')).text).toBe(
      'Fine, you can order since you said "pretty please".',
    )
    // A size exactly as the schema lists it (issue 9 §4: "xl" is refused, not upper-cased after
    // a policy saw it).
    const lower = await second.call('buyMcpShopItem', { ...ORDER, tshirtSize: 'xl' })
    expect(lower).toEqual({
      text: 'Input validation error: Invalid arguments for tool buyMcpShopItem: tshirtSize: Invalid t-shirt size "xl". Must be one of: S, M, L, XL, XXL.',
      isError: true,
    })
    const again = await second.call('buyMcpShopItem', { ...ORDER, tshirtSize: 'XL' })
    expect(again.isError).toBe(false)
    expect(JSON.parse(again.text).order).toMatchObject({ tshirtSize: 'XL' })
    const all = JSON.parse((await session.call('listMcpShopOrders')).text)
    expect(all.orders.map((order: { tshirtSize: string }) => order.tshirtSize)).toEqual(['L', 'XL'])

    await second.close()
    await session.close()

    // Every call is in Deputy's audit chain: the agent as actor, on behalf of the person, with a
    // digest of the arguments and never the arguments themselves.
    const records = [
      ...(await tailAudit(demo.deputy.deps.store, { limit: 100, type: 'tool.called' })),
      ...(await tailAudit(demo.deputy.deps.store, { limit: 100, type: 'tool.refused' })),
    ].sort((a, b) => a.seq - b.seq)
    const refusedOrders = records.filter(
      (record) => record.type === 'tool.refused' && record.data.tool === 'buyMcpShopItem',
    )
    expect(refusedOrders.map((record) => record.actor.id)).toEqual([cimd.clientId, other.clientId])
    expect(refusedOrders[0]).toMatchObject({
      actor: { type: 'client', id: cimd.clientId },
      onBehalfOf: { type: 'user', id: demo.personId },
      target: { type: 'tool', id: `${demo.mcpUrl}#buyMcpShopItem` },
      decision: 'deny',
      reason: 'policy',
      data: { resource: demo.mcpUrl, tool: 'buyMcpShopItem', outcome: 'refused' },
    })
    expect(refusedOrders[0]?.data.argumentsDigest).toMatch(/^sha-256:[\w-]{43}$/)
    const placedRecords = records.filter(
      (record) => record.type === 'tool.called' && record.data.tool === 'buyMcpShopItem',
    )
    // The order without a company never reached the handler: the SDK refused its arguments.
    expect(placedRecords.map((record) => record.data.outcome)).toEqual(['success', 'success'])
    expect(JSON.stringify(records)).not.toContain(ORDER.mailingAddress)
    expect((await verifyAuditChain(demo.deputy.deps.store)).ok).toBe(true)
  })

  it('steps up: a token with only shop:read gets 403 insufficient_scope, and the client re-authorizes for the union', async () => {
    const host = await serveClientMetadata('Step-up agent (v2 SDK)')
    try {
      const provider = new LoopbackOAuthProvider(host.redirectUri, 'unused', {
        url: host.clientId,
        issuer: demo.issuer,
      })
      const session = new McpSession('v2', demo.mcpUrl, provider, demo.person)
      // The host asks for shop:read alone, through the SDK's own auth().
      expect(await auth(provider, { serverUrl: demo.mcpUrl, scope: 'shop:read' })).toBe('REDIRECT')
      const first = provider.takeAuthorizationUrl()
      // (The SDK adds offline_access, which Deputy advertises, to ask for a refresh token.)
      expect(shopScopes(first?.searchParams.get('scope'))).toEqual(['shop:read'])
      const firstPages = await signInAndConsent(first as URL, host.redirectUri, demo.person)
      expect(
        await auth(provider, {
          serverUrl: demo.mcpUrl,
          scope: 'shop:read',
          authorizationCode: firstPages.callback.searchParams.get('code') ?? '',
          iss: firstPages.callback.searchParams.get('iss') ?? undefined,
        }),
      ).toBe('AUTHORIZED')
      expect(shopScopes(provider.tokens()?.scope)).toEqual(['shop:read'])

      await session.connect()
      expect(session.authorizations).toEqual([]) // the token was already there
      expect((await session.call('listMcpShopInventory')).isError).toBe(false)

      const placed = await session.call('buyMcpShopItem', ORDER)
      expect(placed.isError).toBe(false)
      expect(JSON.parse(placed.text).message).toBe('Order placed successfully!')

      const forbidden = session.log.find((exchange) => exchange.status === 403)
      expect(forbidden?.wwwAuthenticate).toMatch(/error="insufficient_scope"/)
      expect(forbidden?.wwwAuthenticate).toContain('scope="shop:order"')
      // The second authorization asked for the union, and the consent page only for what is new.
      const second = provider.authorizationUrls[1]
      expect(shopScopes(second?.searchParams.get('scope'))).toEqual(['shop:order', 'shop:read'])
      const consent = session.authorizations[0]?.find((page) => page.kind === 'consent')?.text ?? ''
      const [, asksNow = '', allowedBefore = ''] =
        /It now also asks to:(.*)You already allowed it to:(.*)/.exec(consent) ?? []
      expect(asksNow).toContain('Order T-shirts for you')
      expect(asksNow).not.toContain("See the shop's inventory and your orders")
      expect(allowedBefore).toContain("See the shop's inventory and your orders")
      expect(shopScopes(provider.tokens()?.scope)).toEqual(['shop:order', 'shop:read'])
      // The wider token still does what the narrow one did.
      expect((await session.call('listMcpShopOrders')).isError).toBe(false)
      await session.close()
    } finally {
      await host.close()
    }
  })

  it('refuses a token Deputy minted for another resource: 401 invalid_token', async () => {
    const { deps } = demo.deputy
    const actor = { type: 'system' as const, id: 'e2e' }
    await deps.resources.put(
      {
        uri: 'https://calendar.example/mcp',
        name: 'Calendar',
        scopes: { 'calendar:read': 'See your calendar' },
        claimsTemplate: [],
        isDefault: false,
      },
      actor,
    )
    const registered = await deps.clients.register(
      {
        name: 'Calendar agent',
        grantTypes: ['client_credentials'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        allowedScopes: ['calendar:read'],
      },
      actor,
    )
    const basic = btoa(`${registered.client.clientId}:${registered.clientSecret}`)
    const tokenResponse = await fetch(`${demo.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'calendar:read',
        resource: 'https://calendar.example/mcp',
      }),
    })
    expect(tokenResponse.status).toBe(200)
    const { access_token: calendarToken } = (await tokenResponse.json()) as {
      access_token: string
    }

    // Over plain HTTP, as any client would present it.
    const direct = await fetch(demo.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${calendarToken}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(direct.status).toBe(401)
    expect(direct.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
    expect(await direct.json()).toMatchObject({ error: 'invalid_token' })

    // And through the official client holding that token: it is not let in.
    const client = new Client({ name: 'deputy-e2e-v2', version: '1.0.0' })
    const transport = new StreamableHTTPClientTransport(new URL(demo.mcpUrl), {
      authProvider: { token: async () => calendarToken },
    })
    await expect(client.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError)
  })
})
