import {
  jwtVerifier,
  memoryStateStore,
  type PolicyDecisionPoint,
  type PolicyDecisionPointAnswer,
  type ToolCallAuthorizationRequest,
  type ToolCallEvent,
} from '@deputy/mcp'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTradingMcpServer, LIMIT_KEY, TRADING_TOOLS } from '../src/index.js'

/**
 * The trading server as the MCP kit runs it: the official v2 client in-process, tokens signed
 * here for its audience, a decision point that answers as Deputy's Cedar engine would (the
 * end-to-end suite in packages/server/test/e2e runs the real one).
 */

const ISSUER = 'http://127.0.0.1:9/'
const RESOURCE = 'http://127.0.0.1:9/trading/mcp'

let sign: (claims: Record<string, unknown>) => Promise<string>
let jwks: { keys: Record<string, unknown>[] }

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }
  sign = (claims) =>
    new SignJWT({ client_id: 'agent-1', scope: 'trading:read trading:trade', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(RESOURCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
})

/** Answers with `decide`, and remembers each request. */
function decisionPoint(
  decide: (request: ToolCallAuthorizationRequest) => PolicyDecisionPointAnswer,
) {
  const requests: ToolCallAuthorizationRequest[] = []
  const pdp: PolicyDecisionPoint = {
    async authorizeToolCall(request) {
      requests.push(request)
      return decide(request)
    },
  }
  return { pdp, requests }
}

const ALLOW: PolicyDecisionPointAnswer = {
  decision: 'allow',
  policies: ['trading.tools'],
  explanation: 'permitted',
}

function trading(pdp: PolicyDecisionPoint) {
  const events: ToolCallEvent[] = []
  const stateStore = memoryStateStore()
  const server = createTradingMcpServer({
    resource: RESOURCE,
    issuer: ISSUER,
    verifier: jwtVerifier({ issuer: ISSUER, audience: RESOURCE, jwks }),
    stateStore,
    policy: pdp,
    audit: (event) => {
      events.push(event)
    },
  })
  async function connect(claims: Record<string, unknown>) {
    const token = await sign(claims)
    const client = new Client({ name: 'trading-test', version: '1.0.0' })
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
  return { server, events, stateStore, connect }
}

describe('the trading server behind @deputy/mcp', () => {
  it('publishes its Protected Resource Metadata: the two trading scopes and the issuer', async () => {
    const { server } = trading(decisionPoint(() => ALLOW).pdp)
    const response = await server.fetch(
      new Request('http://127.0.0.1:9/.well-known/oauth-protected-resource/trading/mcp'),
    )
    expect(await response.json()).toMatchObject({
      resource: RESOURCE,
      authorization_servers: [ISSUER],
      scopes_supported: ['trading:read', 'trading:trade'],
      resource_name: 'Trading (demo)',
    })
  })

  it('needs a decision point: which buys wait is policy, and there is no default', () => {
    expect(() =>
      createTradingMcpServer({
        resource: RESOURCE,
        issuer: ISSUER,
        verifier: jwtVerifier({ issuer: ISSUER, audience: RESOURCE, jwks }),
        stateStore: memoryStateStore(),
        policy: undefined as unknown as PolicyDecisionPoint,
      }),
    ).toThrow('a policy decision point is required')
  })

  it('declares its five tools as actions, with their parsed arguments and the limitCents state', () => {
    const actions = trading(decisionPoint(() => ALLOW).pdp).server.actions()
    expect(actions.map((action) => action.name)).toEqual(TRADING_TOOLS.map((tool) => tool.name))
    for (const action of actions) {
      expect(action.resource).toBe(RESOURCE)
      expect(action.state).toEqual({
        type: 'object',
        properties: { limitCents: { type: 'integer', minimum: 0 } },
      })
    }
    expect(actions.find((action) => action.name === 'buy_stock')?.arguments).toMatchObject({
      type: 'object',
      required: ['symbol', 'quantity', 'maxPriceCents'],
      additionalProperties: false,
    })
  })

  it("asks with the buy's arguments and the person's limit; a needs-approval answer keeps the buy from running", async () => {
    const { pdp, requests } = decisionPoint((request) => {
      const args = request.arguments as { quantity: number; maxPriceCents: number }
      const limit = request.state.limitCents
      return request.tool === 'buy_stock' &&
        (typeof limit !== 'number' || args.quantity * args.maxPriceCents > limit)
        ? {
            decision: 'needs_approval',
            policies: ['trading.over-limit'],
            explanation: 'needs approval',
            message:
              'This buy could cost more than your trading limit, so it waits for your approval.',
          }
        : ALLOW
    })
    const { connect, events, stateStore } = trading(pdp)
    await stateStore.update({ resource: RESOURCE, sub: 'ann' }, LIMIT_KEY, () => 100_000)
    const ann = await connect({ sub: 'ann' })

    const large = { symbol: 'ATKO', quantity: 8, maxPriceCents: 14_218 }
    expect(await ann('buy_stock', large)).toEqual({
      text: 'This buy could cost more than your trading limit, so it waits for your approval.',
      isError: true,
    })
    expect(requests.at(-1)).toMatchObject({
      resource: RESOURCE,
      tool: 'buy_stock',
      sub: 'ann',
      clientId: 'agent-1',
      arguments: large,
      state: { limitCents: 100_000 },
      approved: false,
    })
    expect(events.at(-1)).toMatchObject({
      type: 'tool.refused',
      tool: 'buy_stock',
      decision: 'needs_approval',
      reason: 'approval',
      policies: ['trading.over-limit'],
    })
    const portfolio = JSON.parse((await ann('show_portfolio')).text)
    expect(portfolio).toMatchObject({ cashCents: 1_000_000, holdings: [], recentTrades: [] })

    expect((await ann('buy_stock', { ...large, quantity: 7 })).isError).toBe(false)
    expect(JSON.parse((await ann('show_portfolio')).text).holdings).toMatchObject([
      { symbol: 'ATKO', shares: 7 },
    ])
    // Every tool is asked about, not only buys.
    await ann('list_stocks')
    expect(requests.at(-1)?.tool).toBe('list_stocks')
  })

  it('a missing scope is the OAuth layer’s: buying needs trading:trade', async () => {
    const { connect } = trading(decisionPoint(() => ALLOW).pdp)
    const reader = await connect({ sub: 'bob', scope: 'trading:read' })
    expect((await reader('show_portfolio')).isError).toBe(false)
    await expect(
      reader('buy_stock', { symbol: 'LMNL', quantity: 1, maxPriceCents: 875 }),
    ).rejects.toThrow(/403|insufficient_scope|scope/i)
  })
})
