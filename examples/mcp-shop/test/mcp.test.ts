import {
  jwtVerifier,
  memoryStateStore,
  type PolicyDecisionPoint,
  type ToolCallAuthorizationRequest,
  type ToolCallEvent,
} from '@deputy/mcp'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createShopMcpServer,
  MESSAGES,
  type NewOrder,
  type Order,
  type OrderBook,
  SHOP_TOOLS,
} from '../src/index.js'

/**
 * The shop's rules as the MCP kit enforces them, before any handler runs: the official v2 client
 * talks to the protected server in-process, with access tokens signed here for the shop's
 * audience (the end-to-end suite in packages/server/test/e2e does the same through Deputy).
 */

const ISSUER = 'http://127.0.0.1:9/'
const RESOURCE = 'http://127.0.0.1:9/mcp'
const ORDER = { company: 'Acme', mailingAddress: '1 Main St, Springfield', tshirtSize: 'S' }

let sign: (claims: Record<string, unknown>) => Promise<string>
let jwks: { keys: Record<string, unknown>[] }

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }
  sign = (claims) =>
    new SignJWT({ client_id: 'agent-1', scope: 'shop:read shop:order shop:admin', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(RESOURCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
})

/** An order book that only remembers, so a test can tell whether a handler ran. */
function recordingOrderBook(): OrderBook & { placed: NewOrder[] } {
  const placed: NewOrder[] = []
  return {
    placed,
    async place(order) {
      placed.push(order)
      return {
        id: String(placed.length),
        userId: order.sub,
        email: order.email,
        company: order.company,
        mailingAddress: order.mailingAddress,
        tshirtSize: order.tshirtSize,
        orderDate: new Date(0).toISOString(),
        status: 'confirmed',
      } satisfies Order
    },
    async listFor(sub) {
      return placed
        .filter((order) => order.sub === sub)
        .map((order, i) => ({
          id: String(i + 1),
          userId: order.sub,
          email: order.email,
          company: order.company,
          mailingAddress: order.mailingAddress,
          tshirtSize: order.tshirtSize,
          orderDate: new Date(0).toISOString(),
          status: 'confirmed' as const,
        }))
    },
  }
}

function shop(policy?: PolicyDecisionPoint) {
  const events: ToolCallEvent[] = []
  const orderBook = recordingOrderBook()
  const server = createShopMcpServer({
    ...(policy !== undefined && { policy }),
    resource: RESOURCE,
    issuer: ISSUER,
    verifier: jwtVerifier({ issuer: ISSUER, audience: RESOURCE, jwks }),
    stateStore: memoryStateStore(),
    orderBook,
    audit: (event) => {
      events.push(event)
    },
  })
  async function connect(claims: Record<string, unknown>) {
    const token = await sign(claims)
    const client = new Client({ name: 'shop-test', version: '1.0.0' })
    await client.connect(
      new StreamableHTTPClientTransport(new URL(RESOURCE), {
        authProvider: { token: async () => token },
        // In-process there is no socket to fill in Host, which the kit's DNS-rebinding guard reads.
        fetch: (input, init) => {
          const request = new Request(input, init)
          request.headers.set('host', new URL(request.url).host)
          return server.fetch(request)
        },
      }),
    )
    return async (name: string, args: Record<string, unknown> = {}) => {
      const result = await client.callTool({ name, arguments: args })
      const [first] = result.content as { text: string }[]
      return { text: first?.text ?? '', isError: result.isError === true }
    }
  }
  return { server, events, orderBook, connect }
}

describe('mcp.shop behind @deputy/mcp', () => {
  it('publishes its Protected Resource Metadata: the three shop scopes and the issuer', async () => {
    const { server } = shop()
    const response = await server.fetch(
      new Request('http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp'),
    )
    expect(await response.json()).toMatchObject({
      resource: RESOURCE,
      authorization_servers: [ISSUER],
      scopes_supported: ['shop:read', 'shop:order', 'shop:admin'],
    })
  })

  it("getUserInfo needs the shop:admin permission, and refuses in the seed's words without it", async () => {
    const { connect, events } = shop()
    const shopper = await connect({ sub: 'bob', permissions: [] })
    expect(await shopper('getUserInfo')).toEqual({ text: MESSAGES.notAdmin, isError: true })
    expect(events.at(-1)).toMatchObject({
      type: 'tool.refused',
      sub: 'bob',
      clientId: 'agent-1',
      tool: 'getUserInfo',
      decision: 'deny',
      reason: 'policy',
    })
    const admin = await connect({
      sub: 'ann',
      permissions: ['shop:admin'],
      favorite_song: 'Hey Ya',
    })
    const info = await admin('getUserInfo')
    expect(info.isError).toBe(false)
    expect(info.text).toContain('"favorite_song": "Hey Ya"')
  })

  it('checks the ban before the handler on every ordering path, and only there', async () => {
    const { connect, events, orderBook } = shop()
    const carol = await connect({ sub: 'carol' })
    expect((await carol('buyMcpShopItem', ORDER)).isError).toBe(false)
    await carol('setDemoMode', { mode: 'banned' })

    expect(await carol('buyMcpShopItem', ORDER)).toEqual({
      text: MESSAGES.bannedOrder,
      isError: true,
    })
    expect(await carol('listMcpShopInventory')).toEqual({
      text: MESSAGES.bannedInventory,
      isError: true,
    })
    // The refused order never reached the order book, and the audit says a policy refused it.
    expect(orderBook.placed).toHaveLength(1)
    expect(events.filter((e) => e.type === 'tool.refused').map((e) => [e.tool, e.reason])).toEqual([
      ['buyMcpShopItem', 'policy'],
      ['listMcpShopInventory', 'policy'],
    ])
    // Reading one's orders and saying the magic words are not ordering.
    expect((await carol('listMcpShopOrders')).isError).toBe(false)
    // The ban is carol's alone.
    const dave = await connect({ sub: 'dave' })
    expect((await dave('buyMcpShopItem', ORDER)).isError).toBe(false)

    expect((await carol('prettyPlease')).text).toBe(MESSAGES.prettyPlease)
    expect((await carol('buyMcpShopItem', ORDER)).isError).toBe(false)
    expect(orderBook.placed.map((order) => order.sub)).toEqual(['carol', 'dave', 'carol'])
  })
})

describe('mcp.shop with a policy decision point (Deputy decides its rules with Cedar)', () => {
  /** Forbids with a message what `forbid` names, permits the rest, and remembers each request. */
  function decisionPoint(forbid: (request: ToolCallAuthorizationRequest) => string | undefined) {
    const requests: ToolCallAuthorizationRequest[] = []
    const pdp: PolicyDecisionPoint = {
      async authorizeToolCall(request) {
        requests.push(request)
        const message = forbid(request)
        return message === undefined
          ? { decision: 'allow', policies: ['mcp-shop.tools'], explanation: 'permitted' }
          : {
              decision: 'deny',
              policies: ['mcp-shop.banned-order'],
              explanation: 'forbidden',
              message,
            }
      },
    }
    return { pdp, requests }
  }

  it('declares its seven tools as actions, with their arguments and the demoMode state', () => {
    const { pdp } = decisionPoint(() => undefined)
    const actions = shop(pdp).server.actions()
    expect(actions.map((action) => action.name)).toEqual(SHOP_TOOLS.map((tool) => tool.name))
    for (const action of actions) {
      expect(action.resource).toBe(RESOURCE)
      expect(action.state).toEqual({
        type: 'object',
        properties: { demoMode: { type: 'string', enum: ['normal', 'banned'] } },
      })
    }
    expect(actions.find((action) => action.name === 'buyMcpShopItem')?.arguments).toMatchObject({
      type: 'object',
      properties: { company: {}, mailingAddress: {}, tshirtSize: {} },
      required: ['company', 'mailingAddress', 'tshirtSize'],
    })
    // Without a decision point the rules are code: nothing to declare.
    expect(shop().server.actions()).toEqual([])
  })

  it("asks the decision point with the person's demo mode, and refuses with its words before the handler", async () => {
    const { pdp, requests } = decisionPoint((request) =>
      request.tool === 'buyMcpShopItem' && request.state.demoMode === 'banned'
        ? MESSAGES.bannedOrder
        : undefined,
    )
    const { connect, events, orderBook } = shop(pdp)
    const erin = await connect({ sub: 'erin' })
    await erin('setDemoMode', { mode: 'banned' })
    expect(await erin('buyMcpShopItem', ORDER)).toEqual({
      text: MESSAGES.bannedOrder,
      isError: true,
    })
    expect(orderBook.placed).toEqual([])
    expect(requests.at(-1)).toMatchObject({
      resource: RESOURCE,
      tool: 'buyMcpShopItem',
      sub: 'erin',
      clientId: 'agent-1',
      arguments: ORDER,
      state: { demoMode: 'banned' },
    })
    expect(events.at(-1)).toMatchObject({
      type: 'tool.refused',
      decision: 'deny',
      reason: 'policy',
      policies: ['mcp-shop.banned-order'],
    })
    // Every tool goes to the decision point, not only the ones with a rule in code.
    await erin('prettyPlease')
    expect(requests.at(-1)?.tool).toBe('prettyPlease')
    expect((await erin('buyMcpShopItem', ORDER)).isError).toBe(false)
  })
})
