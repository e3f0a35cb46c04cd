import { InsufficientScopeError } from '@modelcontextprotocol/client'
import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  allow,
  deny,
  type Identity,
  jwtVerifier,
  memoryStateStore,
  needsApproval,
  protectMcpServer,
  type ToolCallEvent,
} from '../src/index.js'
import {
  connect,
  eras,
  makeKey,
  mintToken,
  rawToolCall,
  startAuthorizationServer,
  startMcpServer,
  type TestKey,
  text,
} from './helpers.js'

let as: Awaited<ReturnType<typeof startAuthorizationServer>>
let key: TestKey
let resource: string
const events: ToolCallEvent[] = []
const errors: Error[] = []
const seen: { identity?: Identity; authorization?: string | null; token?: string } = {}

beforeAll(async () => {
  as = await startAuthorizationServer()
  key = await makeKey('k1')
  as.state.keys = [key]
  ;({ resource } = await startMcpServer((resource) => {
    const kit = protectMcpServer({
      resource,
      authorizationServers: [as.issuer],
      scopesSupported: ['shop.read', 'shop.buy', 'shop.admin'],
      challengeScopes: ['shop.read'],
      verifier: jwtVerifier({ issuer: as.issuer, jwksUri: as.jwksUri, audience: resource }),
      server: { name: 'shop', version: '1.0.0' },
      state: memoryStateStore(),
      audit: (event) => {
        events.push(event)
      },
      hideForbiddenTools: true,
      onError: (error) => {
        errors.push(error)
      },
    })
    kit.tool(
      'whoami',
      { scopes: ['shop.read'] },
      { description: 'Who is calling' },
      (_args, ctx) => {
        seen.identity = ctx.identity
        seen.authorization = ctx.http?.req?.headers.get('authorization')
        seen.token = ctx.http?.authInfo?.token
        return {
          content: [{ type: 'text', text: `${ctx.identity.sub} via ${ctx.identity.clientId}` }],
        }
      },
    )
    kit.tool(
      'buy_shirt',
      {
        scopes: ['shop.read', 'shop.buy'],
        policy: async ({ state }) =>
          (await state.get('mode')) === 'banned' ? deny('ABSOLUTELY NOT. GO AWAY') : allow(),
      },
      { description: 'Orders a shirt', inputSchema: z.object({ size: z.enum(['S', 'M', 'L']) }) },
      ({ size }, { identity }) => ({
        content: [{ type: 'text', text: `ordered ${size} for ${String(identity.claims.name)}` }],
      }),
    )
    kit.tool(
      'set_mode',
      { scopes: ['shop.read'] },
      { inputSchema: z.object({ mode: z.enum(['normal', 'banned']) }) },
      async ({ mode }, { state }) => {
        await state.set('mode', mode)
        return { content: [{ type: 'text', text: `mode ${mode}` }] }
      },
    )
    kit.tool('count', { scopes: ['shop.read'] }, {}, async (_args, { state }) => {
      const next = await state.update<number>('count', (current) => (current ?? 0) + 1)
      return { content: [{ type: 'text', text: String(next) }] }
    })
    kit.tool('refund', { roles: ['support', 'admin'] }, {}, () => ({
      content: [{ type: 'text', text: 'refunded' }],
    }))
    kit.tool('inventory', { permissions: ['inventory:write', 'inventory:read'] }, {}, () => ({
      content: [{ type: 'text', text: 'restocked' }],
    }))
    kit.tool(
      'wire_money',
      { policy: () => needsApproval() },
      { inputSchema: z.object({ amount: z.number() }) },
      () => ({ content: [{ type: 'text', text: 'sent' }] }),
    )
    kit.tool(
      'broken_policy',
      {
        policy: () => {
          throw new Error('secret database DSN in here')
        },
      },
      {},
      () => ({
        content: [{ type: 'text', text: 'ran' }],
      }),
    )
    kit.tool('explode', {}, {}, () => {
      throw new Error('handler failed')
    })
    return kit
  }))
})

const person = {
  sub: 'user-1',
  client_id: 'https://agent.example/client.json',
  name: 'Ada',
  email: 'ada@example.com',
  favorite_song: 'Blue Monday',
}

const token = (claims: Record<string, unknown>) =>
  mintToken(key, { iss: as.issuer, aud: resource, ...person, ...claims })

describe.each(eras)('MCP client speaking %s', (era) => {
  it('hands the handler the verified identity with its custom claims, and never the token', async () => {
    const client = await connect(
      resource,
      await token({ scope: 'shop.read', roles: ['customer'] }),
      era,
    )
    const result = await client.callTool({ name: 'whoami', arguments: {} })
    expect(text(result)).toBe('user-1 via https://agent.example/client.json')
    expect(seen.identity).toMatchObject({
      sub: 'user-1',
      clientId: 'https://agent.example/client.json',
      scopes: ['shop.read'],
      roles: ['customer'],
      issuer: as.issuer,
    })
    expect(seen.identity?.claims.favorite_song).toBe('Blue Monday')
    expect(seen.authorization).toBeNull()
    expect(seen.token).toBe('')
  })

  it('answers a call short of scope with 403 insufficient_scope naming every scope the tool needs', async () => {
    const client = await connect(resource, await token({ scope: 'shop.read' }), era)
    const error = await client.callTool({ name: 'buy_shirt', arguments: { size: 'L' } }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect((error as InsufficientScopeError).requiredScope).toBe('shop.read shop.buy')
    expect((error as InsufficientScopeError).resourceMetadataUrl?.href).toBe(
      new URL('/.well-known/oauth-protected-resource/mcp', resource).href,
    )
  })

  it('refuses a caller without any of the roles as a tool error, and runs for one with a role', async () => {
    const customer = await connect(
      resource,
      await token({ scope: 'shop.read', roles: ['customer'] }),
      era,
    )
    const refused = await customer.callTool({ name: 'refund', arguments: {} })
    expect(refused.isError).toBe(true)
    expect(text(refused)).toBe('You do not have a role that may call refund.')
    const support = await connect(
      resource,
      await token({ scope: 'shop.read', roles: ['support'] }),
      era,
    )
    expect(text(await support.callTool({ name: 'refund', arguments: {} }))).toBe('refunded')
  })

  it('requires every listed permission', async () => {
    const partial = await connect(resource, await token({ permissions: ['inventory:read'] }), era)
    const refused = await partial.callTool({ name: 'inventory', arguments: {} })
    expect(refused.isError).toBe(true)
    expect(text(refused)).toBe('You do not have permission to call inventory.')
    const full = await connect(
      resource,
      await token({ permissions: 'inventory:read inventory:write' }),
      era,
    )
    expect(text(await full.callTool({ name: 'inventory', arguments: {} }))).toBe('restocked')
  })

  it('hides from tools/list the tools the caller’s roles and permissions rule out, keeping step-up ones', async () => {
    const customer = await connect(
      resource,
      await token({ scope: 'shop.read', roles: ['customer'] }),
      era,
    )
    const names = (await customer.listTools()).tools.map((tool) => tool.name).sort()
    expect(names).toEqual([
      'broken_policy',
      'buy_shirt',
      'count',
      'explode',
      'set_mode',
      'whoami',
      'wire_money',
    ])
    const admin = await connect(
      resource,
      await token({
        scope: 'shop.read',
        roles: ['admin'],
        permissions: ['inventory:read', 'inventory:write'],
      }),
      era,
    )
    expect((await admin.listTools()).tools.map((tool) => tool.name)).toContain('refund')
    expect((await admin.listTools()).tools.map((tool) => tool.name)).toContain('inventory')
  })

  it('a policy reading per-user state refuses with its own message until the state changes', async () => {
    const sub = `banned-${era}`
    const client = await connect(resource, await token({ sub, scope: 'shop.read shop.buy' }), era)
    await client.callTool({ name: 'set_mode', arguments: { mode: 'banned' } })
    const refused = await client.callTool({ name: 'buy_shirt', arguments: { size: 'M' } })
    expect(refused.isError).toBe(true)
    expect(text(refused)).toBe('ABSOLUTELY NOT. GO AWAY')
    // Another person is not affected by this one's ban: state is keyed by sub.
    const other = await connect(
      resource,
      await token({ sub: `other-${era}`, scope: 'shop.read shop.buy' }),
      era,
    )
    expect(text(await other.callTool({ name: 'buy_shirt', arguments: { size: 'M' } }))).toBe(
      'ordered M for Ada',
    )
    await client.callTool({ name: 'set_mode', arguments: { mode: 'normal' } })
    expect(text(await client.callTool({ name: 'buy_shirt', arguments: { size: 'S' } }))).toBe(
      'ordered S for Ada',
    )
  })

  it('a policy answering needs_approval keeps the tool from running', async () => {
    const client = await connect(resource, await token({}), era)
    const result = await client.callTool({ name: 'wire_money', arguments: { amount: 10 } })
    expect(result.isError).toBe(true)
    expect(text(result)).toBe(
      'This call to wire_money needs the approval of the person you act for.',
    )
  })

  it('a throwing policy refuses without leaking its error', async () => {
    const client = await connect(resource, await token({}), era)
    const result = await client.callTool({ name: 'broken_policy', arguments: {} })
    expect(result.isError).toBe(true)
    expect(text(result)).toBe('This call to broken_policy was refused.')
    expect(JSON.stringify(result)).not.toContain('DSN')
    // The operator still learns what went wrong.
    expect(errors.map((error) => error.message)).toContain('secret database DSN in here')
  })
})

describe('per-user state through tool calls', () => {
  it('loses no increment when one person calls concurrently', async () => {
    const client = await connect(
      resource,
      await token({ sub: 'counter', scope: 'shop.read' }),
      '2026-07-28',
    )
    const calls = 20
    const results = await Promise.all(
      Array.from({ length: calls }, () => client.callTool({ name: 'count', arguments: {} })),
    )
    expect(
      results
        .map(text)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: calls }, (_, index) => index + 1))
  })
})

describe('audit hook', () => {
  it('reports who, through which agent, which tool, a digest of the arguments, the decision and outcome', async () => {
    const client = await connect(
      resource,
      await token({ sub: 'audited', scope: 'shop.read shop.buy' }),
      '2026-07-28',
    )
    await client.callTool({ name: 'buy_shirt', arguments: { size: 'L' } })
    const event = events.findLast((candidate) => candidate.sub === 'audited')
    expect(event).toMatchObject({
      type: 'tool.called',
      resource,
      sub: 'audited',
      clientId: 'https://agent.example/client.json',
      tool: 'buy_shirt',
      decision: 'allow',
      outcome: 'success',
    })
    expect(event?.argumentsDigest).toMatch(/^sha-256:[A-Za-z0-9_-]{43}$/)
    expect(JSON.stringify(event)).not.toContain('"L"')
    expect(typeof event?.tokenId).toBe('string')
  })

  it('reports refusals, including the 403 step-up ones, with the same digest for the same arguments', async () => {
    const sub = 'audited-refusals'
    const short = await connect(resource, await token({ sub, scope: 'shop.read' }), '2025-11-25')
    await short.callTool({ name: 'buy_shirt', arguments: { size: 'L' } }).catch(() => undefined)
    const customer = await connect(
      resource,
      await token({ sub, roles: ['customer'] }),
      '2026-07-28',
    )
    await customer.callTool({ name: 'refund', arguments: {} })
    const mine = events.filter((event) => event.sub === sub)
    expect(
      mine.map((event) => [event.tool, event.type, event.decision, event.reason, event.outcome]),
    ).toEqual([
      ['buy_shirt', 'tool.refused', 'insufficient_scope', 'scope', 'refused'],
      ['refund', 'tool.refused', 'deny', 'role', 'refused'],
    ])
    const allowed = events.findLast((event) => event.sub === 'audited')
    expect(mine[0]?.argumentsDigest).toBe(allowed?.argumentsDigest)
  })
})

describe('audit of failing handlers', () => {
  it('reports a handler that throws as allowed with outcome error', async () => {
    const client = await connect(resource, await token({ sub: 'exploder' }), '2026-07-28')
    const result = await client.callTool({ name: 'explode', arguments: {} })
    expect(result.isError).toBe(true)
    expect(events.findLast((event) => event.sub === 'exploder')).toMatchObject({
      type: 'tool.called',
      tool: 'explode',
      decision: 'allow',
      outcome: 'error',
    })
  })
})

describe('tools/call gate on the wire (2026-07-28)', () => {
  it('a token with every scope passes the gate where one short of scope gets 403 with the challenge', async () => {
    const ok = await rawToolCall(
      resource,
      await token({ scope: 'shop.read shop.buy' }),
      'buy_shirt',
      { size: 'S' },
    )
    expect(ok.status).toBe(200)
    const short = await rawToolCall(resource, await token({ scope: 'shop.buy' }), 'buy_shirt', {
      size: 'S',
    })
    expect(short.status).toBe(403)
    const challenge = short.headers.get('www-authenticate') ?? ''
    expect(challenge).toMatch(/^Bearer /)
    expect(challenge).toContain('error="insufficient_scope"')
    expect(challenge).toContain('scope="shop.read shop.buy"')
    expect(challenge).toContain(
      `resource_metadata="${new URL('/.well-known/oauth-protected-resource/mcp', resource).href}"`,
    )
  })

  it('an Mcp-Name header naming another tool cannot slip a call past its rule', async () => {
    const before = events.length
    const response = await rawToolCall(
      resource,
      await token({ sub: 'sneaky', scope: 'shop.read' }),
      'buy_shirt',
      { size: 'S' },
      'whoami',
    )
    // 2026-07-28 streamable HTTP: headers must match the body, else -32020 before any dispatch.
    expect(response.status).toBeGreaterThanOrEqual(400)
    expect(JSON.stringify(await response.json())).toContain('-32020')
    expect(events.slice(before).filter((event) => event.sub === 'sneaky')).toEqual([])
  })
})
