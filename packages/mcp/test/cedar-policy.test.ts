import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  cedarPolicy,
  jwtVerifier,
  memoryStateStore,
  type PolicyDecisionPoint,
  type PolicyDecisionPointAnswer,
  type ProtectedMcpServer,
  protectMcpServer,
  type ToolCallAuthorizationRequest,
  type ToolCallEvent,
} from '../src/index.js'
import {
  connect,
  makeKey,
  mintToken,
  startAuthorizationServer,
  startMcpServer,
  type TestKey,
  text,
} from './helpers.js'

/**
 * A tool rule decided by a policy decision point (`cedarPolicy`): what the kit sends, how each
 * answer becomes the call's outcome and its audit event. The decision point here is a small
 * stand-in that answers what a test tells it; Deputy's Cedar engine behind it is tested with
 * the real thing in packages/server/test/e2e.
 */

/** Answers with `next` (or by `answer`), and remembers every request. */
function scriptedPdp() {
  const requests: ToolCallAuthorizationRequest[] = []
  const pdp = {
    requests,
    answer: (
      _request: ToolCallAuthorizationRequest,
    ): PolicyDecisionPointAnswer | Promise<never> => ({
      decision: 'allow',
      policies: ['permit-all'],
      explanation: 'permit-all allowed it.',
    }),
    async authorizeToolCall(request: ToolCallAuthorizationRequest) {
      requests.push(request)
      return pdp.answer(request)
    },
  }
  return pdp
}

let as: Awaited<ReturnType<typeof startAuthorizationServer>>
let key: TestKey
let resource: string
let kit: ProtectedMcpServer
const pdp = scriptedPdp()
const events: ToolCallEvent[] = []
const errors: Error[] = []
const ran: string[] = []

const DEMO_MODE = { type: 'string', enum: ['normal', 'banned'] }

beforeAll(async () => {
  as = await startAuthorizationServer()
  key = await makeKey('k1')
  as.state.keys = [key]
  ;({ resource, kit } = await startMcpServer((resource) => {
    const server = protectMcpServer({
      resource,
      authorizationServers: [as.issuer],
      verifier: jwtVerifier({ issuer: as.issuer, jwksUri: as.jwksUri, audience: resource }),
      server: { name: 'shop', version: '1.0.0' },
      state: memoryStateStore(),
      audit: (event) => {
        events.push(event)
      },
      onError: (error) => {
        errors.push(error)
      },
    })
    server.tool(
      'buy',
      { scopes: ['shop.buy'], policy: cedarPolicy(pdp, { state: { demoMode: DEMO_MODE } }) },
      {
        description: 'Orders a shirt',
        inputSchema: z.object({ size: z.enum(['S', 'M', 'XXL']), note: z.string().optional() }),
      },
      ({ size }) => {
        ran.push(`buy ${size}`)
        return { content: [{ type: 'text', text: `ordered ${size}` }] }
      },
    )
    server.tool('inventory', { policy: cedarPolicy(pdp) }, {}, () => {
      ran.push('inventory')
      return { content: [{ type: 'text', text: 'one shirt' }] }
    })
    // Not guarded by Cedar: never declared as an action, never sent to the decision point.
    server.tool(
      'set_state',
      {},
      { inputSchema: z.object({ key: z.string(), value: z.string() }) },
      async ({ key, value }, { state }) => {
        await state.set(key, value)
        return { content: [{ type: 'text', text: 'set' }] }
      },
    )
    return server
  }))
})

const person = { sub: 'ada', client_id: 'https://agent.example/client.json', scope: 'shop.buy' }
const token = (claims: Record<string, unknown> = {}) =>
  mintToken(key, { iss: as.issuer, aud: resource, ...person, ...claims })

describe('cedarPolicy: what the decision point is asked', () => {
  it('sends the resource, tool, person, agent, scopes, actors, validated arguments and the declared state keys only', async () => {
    const client = await connect(resource, await token({ sub: 'asker' }), '2026-07-28')
    await client.callTool({ name: 'set_state', arguments: { key: 'demoMode', value: 'banned' } })
    await client.callTool({
      name: 'set_state',
      arguments: { key: 'secret', value: 'not for policies' },
    })
    pdp.requests.length = 0
    await client.callTool({ name: 'buy', arguments: { size: 'M' } })
    expect(pdp.requests).toEqual([
      {
        resource,
        tool: 'buy',
        sub: 'asker',
        clientId: 'https://agent.example/client.json',
        scopes: ['shop.buy'],
        // RFC 8693 `act` of the token, the current actor first: nobody exchanged this one.
        actors: [],
        arguments: { size: 'M' },
        state: { demoMode: 'banned' },
        approved: false,
      },
    ])
  })

  it('leaves out a declared state key the person has no value for, and reads none when none is declared', async () => {
    const client = await connect(resource, await token({ sub: 'fresh' }), '2026-07-28')
    pdp.requests.length = 0
    await client.callTool({ name: 'buy', arguments: { size: 'S' } })
    await client.callTool({ name: 'inventory', arguments: {} })
    expect(pdp.requests.map((request) => request.state)).toEqual([{}, {}])
  })

  it('is not asked about a tool short of scope: the OAuth layer answers first', async () => {
    const client = await connect(resource, await token({ sub: 'short', scope: '' }), '2026-07-28')
    pdp.requests.length = 0
    await client.callTool({ name: 'buy', arguments: { size: 'S' } }).catch(() => undefined)
    expect(pdp.requests).toEqual([])
  })
})

describe('cedarPolicy: answers become outcomes', () => {
  async function call(sub: string, answer: PolicyDecisionPointAnswer | Error) {
    pdp.answer = () => (answer instanceof Error ? Promise.reject(answer) : answer)
    const client = await connect(resource, await token({ sub }), '2026-07-28')
    const before = ran.length
    const result = await client.callTool({ name: 'buy', arguments: { size: 'XXL' } })
    return {
      result: { text: text(result), isError: result.isError === true },
      ran: ran.length > before,
      event: events.findLast((event) => event.sub === sub),
    }
  }

  it('allow runs the tool, and the event names the policies that allowed it', async () => {
    const { result, ran, event } = await call('allowed', {
      decision: 'allow',
      policies: ['shop.open'],
      explanation: 'shop.open allowed it.',
    })
    expect(result).toEqual({ text: 'ordered XXL', isError: false })
    expect(ran).toBe(true)
    expect(event).toMatchObject({
      type: 'tool.called',
      decision: 'allow',
      outcome: 'success',
      policies: ['shop.open'],
    })
  })

  it("deny refuses with the deciding policy's message, and the event names it", async () => {
    const { result, ran, event } = await call('denied', {
      decision: 'deny',
      policies: ['shop.banned-order'],
      explanation: 'shop.banned-order forbade it.',
      message: 'ABSOLUTELY NOT. GO AWAY 👋',
    })
    expect(result).toEqual({ text: 'ABSOLUTELY NOT. GO AWAY 👋', isError: true })
    expect(ran).toBe(false)
    expect(event).toMatchObject({
      type: 'tool.refused',
      decision: 'deny',
      reason: 'policy',
      outcome: 'refused',
      policies: ['shop.banned-order'],
    })
  })

  it("deny without a message (no policy permitted it) refuses with the kit's sentence and no policy ids", async () => {
    const { result, ran, event } = await call('default-deny', {
      decision: 'deny',
      policies: [],
      explanation: 'No policy permits it.',
    })
    expect(result).toEqual({ text: 'This call to buy was refused by policy.', isError: true })
    expect(ran).toBe(false)
    expect(event).toMatchObject({ decision: 'deny', reason: 'policy', policies: [] })
  })

  it('needs_approval keeps the tool from running, says approval is needed, and is audited as needs_approval', async () => {
    const { result, ran, event } = await call('approval', {
      decision: 'needs_approval',
      policies: ['shop.xxl-needs-approval'],
      explanation: 'shop.xxl-needs-approval holds it for approval.',
    })
    expect(result).toEqual({
      text: 'This call to buy needs the approval of the person you act for.',
      isError: true,
    })
    expect(ran).toBe(false)
    expect(event).toMatchObject({
      type: 'tool.refused',
      decision: 'needs_approval',
      reason: 'approval',
      outcome: 'refused',
      policies: ['shop.xxl-needs-approval'],
    })
  })

  it("needs_approval with the policy's message shows that message", async () => {
    const { result, ran } = await call('approval-message', {
      decision: 'needs_approval',
      policies: ['shop.xxl-needs-approval'],
      explanation: 'held',
      message: 'XXL orders need your approval.',
    })
    expect(result).toEqual({ text: 'XXL orders need your approval.', isError: true })
    expect(ran).toBe(false)
  })

  it('a failing decision point refuses without leaking why, and the operator hears of it', async () => {
    const { result, ran, event } = await call(
      'pdp-down',
      new Error('connection refused to policy db'),
    )
    expect(result).toEqual({ text: 'This call to buy was refused.', isError: true })
    expect(ran).toBe(false)
    expect(event).toMatchObject({ decision: 'deny', reason: 'policy_error' })
    expect(errors.map((error) => error.message)).toContain('connection refused to policy db')
  })

  it('an answer that is not a decision refuses (fail closed)', async () => {
    const { result, ran, event } = await call('confused', {
      decision: 'maybe',
    } as unknown as PolicyDecisionPointAnswer)
    expect(result).toEqual({ text: 'This call to buy was refused.', isError: true })
    expect(ran).toBe(false)
    expect(event).toMatchObject({ decision: 'deny', reason: 'policy_error' })
    expect(errors.map((error) => error.message)).toContain(
      'the policy decision point gave no decision for buy',
    )
  })
})

describe('protectMcpServer(...).actions()', () => {
  it('declares every tool guarded by cedarPolicy with its input schema and state keys, and no other', () => {
    const actions = kit.actions()
    expect(actions.map((action) => action.name)).toEqual(['buy', 'inventory'])
    expect(actions[0]).toEqual({
      name: 'buy',
      resource,
      description: 'Orders a shirt',
      arguments: expect.objectContaining({
        type: 'object',
        properties: {
          size: { type: 'string', enum: ['S', 'M', 'XXL'] },
          note: { type: 'string' },
        },
        required: ['size'],
      }),
      state: { type: 'object', properties: { demoMode: DEMO_MODE } },
    })
    expect(actions[1]).toEqual({
      name: 'inventory',
      resource,
      arguments: { type: 'object', properties: {} },
      state: { type: 'object', properties: {} },
    })
  })
})

describe('cedarPolicy decides on the arguments the handler gets (issue 9 §4)', () => {
  const asked = scriptedPdp()
  const handled: unknown[] = []
  let shop: ProtectedMcpServer
  let shopResource: string
  // A schema that normalises: trimmed, upper-cased, then one of three; a quantity defaulted.
  const OrderSchema = z.strictObject({
    size: z
      .string()
      .trim()
      .toUpperCase()
      .pipe(z.enum(['S', 'M', 'XXL'])),
    quantity: z.number().int().default(1),
  })

  beforeAll(async () => {
    ;({ resource: shopResource, kit: shop } = await startMcpServer((resource) => {
      const server = protectMcpServer({
        resource,
        authorizationServers: [as.issuer],
        verifier: jwtVerifier({ issuer: as.issuer, jwksUri: as.jwksUri, audience: resource }),
        server: { name: 'normalising-shop', version: '1.0.0' },
      })
      server.tool('order', { policy: cedarPolicy(asked) }, { inputSchema: OrderSchema }, (args) => {
        handled.push(args)
        return { content: [{ type: 'text', text: `ordered ${args.quantity} ${args.size}` }] }
      })
      return server
    }))
  })

  it('the decision point is asked about the parsed value, the one the handler runs with, never the raw arguments', async () => {
    const client = await connect(
      shopResource,
      await mintToken(key, { iss: as.issuer, aud: shopResource, sub: 'norm', client_id: 'agent' }),
      '2026-07-28',
    )
    const result = await client.callTool({ name: 'order', arguments: { size: ' xxl ' } })
    expect(text(result)).toBe('ordered 1 XXL')
    expect(asked.requests.map((request) => request.arguments)).toEqual([
      { size: 'XXL', quantity: 1 },
    ])
    expect(handled).toEqual([{ size: 'XXL', quantity: 1 }])
    // What the schema refuses reaches neither.
    const refused = await client.callTool({ name: 'order', arguments: { size: 'XL' } })
    expect(refused.isError).toBe(true)
    expect(asked.requests).toHaveLength(1)
    expect(handled).toHaveLength(1)
  })

  it('declares context.arguments as the schema parses them: the enum after normalising, a defaulted property required', () => {
    const [order] = shop.actions()
    expect(order?.arguments).toMatchObject({
      type: 'object',
      properties: {
        size: { type: 'string', enum: ['S', 'M', 'XXL'] },
        quantity: { type: 'integer' },
      },
      required: ['size', 'quantity'],
      additionalProperties: false,
    })
  })

  it('refuses a Cedar-guarded tool whose parsed arguments JSON Schema cannot describe (a transform), and keeps it for a code policy', () => {
    const server = protectMcpServer({
      resource: 'https://transform.example/mcp',
      authorizationServers: [as.issuer],
      verifier: jwtVerifier({ issuer: as.issuer, jwksUri: as.jwksUri, audience: 'x' }),
      server: { name: 'transforming', version: '1.0.0' },
    })
    const inputSchema = z.object({ amount: z.string().transform(Number) })
    expect(() =>
      server.tool('pay', { policy: cedarPolicy(asked) }, { inputSchema }, () => ({ content: [] })),
    ).toThrow(
      /^tool pay: a Cedar policy is decided on the parsed arguments, which JSON Schema must describe/,
    )
    expect(() =>
      server.tool('pay', { policy: () => ({ decision: 'allow' }) }, { inputSchema }, () => ({
        content: [],
      })),
    ).not.toThrow()
  })
})

describe('cedarPolicy options', () => {
  it('needs a decision point with authorizeToolCall', () => {
    expect(() => cedarPolicy({} as PolicyDecisionPoint)).toThrow(
      'cedarPolicy: the decision point needs an authorizeToolCall() method',
    )
  })

  it('refuses a state key schema that is not an object, and an empty key', () => {
    expect(() =>
      cedarPolicy(pdp, { state: { demoMode: 'string' as unknown as Record<string, unknown> } }),
    ).toThrow(/cedarPolicy: .*must be a JSON Schema object/s)
    expect(() => cedarPolicy(pdp, { state: { '': { type: 'string' } } })).toThrow(/cedarPolicy:/)
  })

  it('refuses unknown options', () => {
    expect(() => cedarPolicy(pdp, { arguments: {} } as never)).toThrow(/cedarPolicy:/)
  })
})
