import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import type { AuditRecord } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { createRoles } from '../../src/identity/roles.js'
import { freePort } from '../interop/fixture.js'
import { type ShopDemo, startShopDemo } from './fixture.js'
import { LoopbackOAuthProvider } from './provider.js'
import { McpSession } from './session.js'

/**
 * Issue 5 §4 and §5: mcp.shop's ban and shop:admin check are Cedar policies
 * (examples/mcp-shop/policies/mcp-shop.cedar), decided by Deputy's policy engine through the MCP
 * kit's `cedarPolicy`, with the seed's words; each decision names its policy in the audit chain;
 * an operator's policy can hold a call for the person's approval. `deputy demo` on a real socket,
 * the official v2 MCP client, nothing of Deputy or the shop replaced.
 */

const ORDER = { company: 'Globex', mailingAddress: '1 Cypress Creek, Springfield', tshirtSize: 'L' }
const BANNED_ORDER = { text: 'ABSOLUTELY NOT. GO AWAY 👋', isError: true }
const BANNED_INVENTORY = {
  text: "You again, we're not letting you get a shirt after what happened at MCP Night.",
  isError: true,
}
const NOT_ADMIN = { text: "Sorry, bruh. You don't have these permissions.", isError: true }
const NEEDS_APPROVAL = {
  text: 'This call to buyMcpShopItem needs the approval of the person you act for.',
  isError: true,
}
const SHOP_POLICIES = [
  'mcp-shop.admin-user-info',
  'mcp-shop.banned-inventory',
  'mcp-shop.banned-order',
  'mcp-shop.tools',
]
const SHOP_TOOLS = [
  'buyMcpShopItem',
  'clearDemoMode',
  'getUserInfo',
  'listMcpShopInventory',
  'listMcpShopOrders',
  'prettyPlease',
  'setDemoMode',
]
const OPERATOR = { type: 'user' as const, id: 'operator', label: 'ops@mcp.shop' }

/** An operator's policy: orders of XXL shirts wait for the person's approval. */
const XXL_NEEDS_APPROVAL = (shop: string) => `@id("mcp-shop.xxl-needs-approval")
@description("An XXL shirt is ordered only with the person's approval.")
forbid (principal, action == Deputy::Action::"${shop}#buyMcpShopItem", resource)
when { context.arguments.tshirtSize == "XXL" }
unless { context.approved };`

/**
 * What a client may send for `tshirtSize` instead of exactly "XXL": case, spaces, Unicode
 * look-alikes (full-width letters, Cyrillic Х, the Roman numeral Ⅼ), invisible characters, and
 * other types. Each must be refused by the tool's schema; none may reach the handler as XXL
 * behind the policy's back.
 */
const XXL_VARIANTS: unknown[] = [
  'xxl',
  'Xxl',
  ' XXL',
  'XXL ',
  '\tXXL\n',
  '\u00a0XXL',
  'ＸＸＬ',
  'XXＬ',
  '\u0425\u0425L',
  'XX\u216c',
  'XXL\u200b',
  'X\u00adXL',
  ['XXL'],
  { value: 'XXL' },
  5,
  true,
  null,
]

/** The SDK's refusal of arguments that do not fit a tool's schema: a tool error naming the field. */
const schemaRefusal = (tool: string, field: string) =>
  new RegExp(`^Input validation error: Invalid arguments for tool ${tool}: ${field}`)

describe('mcp.shop rules as Cedar policies (issue 5 §4, §5)', () => {
  let demo: ShopDemo

  beforeAll(async () => {
    demo = await startShopDemo()
  })

  afterAll(async () => {
    await demo?.close()
  })

  /** A new agent for `person`, registered dynamically, signed in through the real pages. */
  async function connect(
    name: string,
    person: { email: string; password: string } = demo.person,
  ): Promise<McpSession> {
    const provider = new LoopbackOAuthProvider(
      `http://127.0.0.1:${await freePort()}/callback`,
      name,
    )
    const session = new McpSession('v2', demo.mcpUrl, provider, person)
    await session.connect()
    return session
  }

  /** The newest audit records of `type` about `tool`, oldest first. */
  async function records(type: string, tool: string): Promise<AuditRecord[]> {
    const all = await tailAudit(demo.deputy.deps.store, { limit: 500, type })
    return all.filter((record) =>
      type === 'policy.decided'
        ? record.data.action === `${demo.mcpUrl}#${tool}`
        : record.data.tool === tool,
    )
  }

  /** The engine reloads a new policy-set version within `policyRefreshIntervalMs`; a test does not wait. */
  async function operatorWrites(text: string): Promise<void> {
    await demo.deputy.deps.policies.put(text, OPERATOR)
    await demo.deputy.deps.policy.refresh()
  }

  it("declares the shop's tools as actions and installs its policies with the seed's words", async () => {
    const { policies } = demo.deputy.deps
    const stored = await policies.list()
    const ids = stored.map((policy) => policy.id).filter((id) => id.startsWith('mcp-shop.'))
    expect(ids.sort()).toEqual(SHOP_POLICIES)
    const byId = new Map(stored.map((policy) => [policy.id, policy]))
    expect(byId.get('mcp-shop.banned-order')).toMatchObject({
      effect: 'forbid',
      message: BANNED_ORDER.text,
      actions: [`${demo.mcpUrl}#buyMcpShopItem`],
    })
    expect(byId.get('mcp-shop.banned-inventory')).toMatchObject({
      effect: 'forbid',
      message: BANNED_INVENTORY.text,
      actions: [`${demo.mcpUrl}#listMcpShopInventory`],
    })
    expect(byId.get('mcp-shop.admin-user-info')).toMatchObject({
      effect: 'forbid',
      message: NOT_ADMIN.text,
      actions: [`${demo.mcpUrl}#getUserInfo`],
    })
    expect(byId.get('mcp-shop.tools')?.effect).toBe('permit')

    const actions = (await policies.actions()).filter((action) => action.resource === demo.mcpUrl)
    expect(actions.map((action) => action.name).sort()).toEqual(SHOP_TOOLS)
    const buy = actions.find((action) => action.name === 'buyMcpShopItem')
    // Exact: a size is one of five words, and nothing else may be sent (issue 9 §4).
    expect(buy?.arguments).toMatchObject({
      type: 'object',
      properties: {
        tshirtSize: { type: 'string', enum: ['S', 'M', 'L', 'XL', 'XXL'] },
        company: { type: 'string' },
      },
      additionalProperties: false,
    })
    expect(buy?.state).toEqual({
      type: 'object',
      properties: { demoMode: { type: 'string', enum: ['normal', 'banned'] } },
    })
  })

  it('the ban is a Cedar forbid: the same words, and the tool-call event and policy.decided name the ban policy', async () => {
    const session = await connect('Banned agent (v2 SDK)')
    expect((await session.call('setDemoMode', { mode: 'banned' })).text).toBe(
      'Demo mode set to banned.',
    )
    expect(await session.call('buyMcpShopItem', ORDER)).toEqual(BANNED_ORDER)
    expect(await session.call('listMcpShopInventory')).toEqual(BANNED_INVENTORY)
    // Not ordering: the ban policies do not name these tools, the permit lets them run.
    expect((await session.call('listMcpShopOrders')).isError).toBe(false)

    const [refused] = (await records('tool.refused', 'buyMcpShopItem')).slice(-1)
    expect(refused).toMatchObject({
      actor: { type: 'client', id: session.provider.clientId },
      onBehalfOf: { type: 'user', id: demo.personId },
      target: { type: 'tool', id: `${demo.mcpUrl}#buyMcpShopItem` },
      decision: 'deny',
      reason: 'policy',
      data: { tool: 'buyMcpShopItem', outcome: 'refused', policies: ['mcp-shop.banned-order'] },
    })
    const [inventory] = (await records('tool.refused', 'listMcpShopInventory')).slice(-1)
    expect(inventory?.data.policies).toEqual(['mcp-shop.banned-inventory'])
    const [decided] = (await records('policy.decided', 'buyMcpShopItem')).slice(-1)
    expect(decided).toMatchObject({
      decision: 'deny',
      data: { action: `${demo.mcpUrl}#buyMcpShopItem`, policies: ['mcp-shop.banned-order'] },
    })
    expect(decided?.data.explanation).toContain('mcp-shop.banned-order')

    // The magic words lift the ban: the same order is now allowed, by the shop's permit.
    expect((await session.call('prettyPlease')).isError).toBe(false)
    const placed = await session.call('buyMcpShopItem', ORDER)
    expect(placed.isError).toBe(false)
    const [called] = (await records('tool.called', 'buyMcpShopItem')).slice(-1)
    expect(called).toMatchObject({
      decision: 'allow',
      data: { outcome: 'success', policies: ['mcp-shop.tools'] },
    })
    const [allowed] = (await records('policy.decided', 'buyMcpShopItem')).slice(-1)
    expect(allowed).toMatchObject({ decision: 'allow', data: { policies: ['mcp-shop.tools'] } })
    await session.close()
    expect((await verifyAuditChain(demo.deputy.deps.store)).ok).toBe(true)
  })

  it("getUserInfo: Cedar refuses a person without shop:admin in the seed's words, and lets the admin in", async () => {
    const shopper = { email: 'shopper@mcp.shop', password: 'a long shopper password 1' }
    await demo.deputy.deps.users.create(
      { email: shopper.email, name: 'Plain Shopper', password: shopper.password },
      OPERATOR,
    )
    const plain = await connect('Plain agent (v2 SDK)', shopper)
    expect(await plain.call('getUserInfo')).toEqual(NOT_ADMIN)
    // Refused before the handler ran (tool.refused, not tool.called), by the admin policy.
    const [refused] = (await records('tool.refused', 'getUserInfo')).slice(-1)
    expect(refused).toMatchObject({
      decision: 'deny',
      reason: 'policy',
      data: { policies: ['mcp-shop.admin-user-info'] },
    })
    // Scopes stay with the OAuth layer: the plain shopper's token has them, Cedar said no.
    expect(plain.log.some((exchange) => exchange.status === 403)).toBe(false)
    await plain.close()

    const admin = await connect('Admin agent (v2 SDK)')
    const info = await admin.call('getUserInfo')
    expect(info.isError).toBe(false)
    expect(info.text).toContain('"favorite_song": "Careless Whisper"')
    await admin.close()
  })

  it("an operator's policy holds XXL orders for approval: the next call through the MCP client is refused as needing approval", async () => {
    const session = await connect('Approval agent (v2 SDK)')
    const ordersBefore = JSON.parse((await session.call('listMcpShopOrders')).text).orders.length
    // Before the operator's policy, an XXL order goes through.
    expect((await session.call('buyMcpShopItem', { ...ORDER, tshirtSize: 'XXL' })).isError).toBe(
      false,
    )

    await operatorWrites(XXL_NEEDS_APPROVAL(demo.mcpUrl))
    expect(await session.call('buyMcpShopItem', { ...ORDER, tshirtSize: 'XXL' })).toEqual(
      NEEDS_APPROVAL,
    )
    const [held] = (await records('tool.refused', 'buyMcpShopItem')).slice(-1)
    expect(held).toMatchObject({
      decision: 'needs-approval',
      reason: 'approval',
      data: { outcome: 'refused', policies: ['mcp-shop.xxl-needs-approval'] },
    })
    const [decided] = (await records('policy.decided', 'buyMcpShopItem')).slice(-1)
    expect(decided).toMatchObject({
      decision: 'needs-approval',
      data: { policies: ['mcp-shop.xxl-needs-approval'] },
    })

    // Other sizes are not held, and the held order never reached the order book.
    expect((await session.call('buyMcpShopItem', ORDER)).isError).toBe(false)
    const orders = JSON.parse((await session.call('listMcpShopOrders')).text).orders
    expect(
      orders.map((order: { tshirtSize: string }) => order.tshirtSize).slice(ordersBefore),
    ).toEqual(['XXL', 'L'])
    await session.close()
  })

  describe('policies decide on the values the handler uses (issue 9 §4)', () => {
    /** The shop's orders of the session's person, as the order book has them. */
    async function sizesOrdered(session: McpSession): Promise<string[]> {
      const listed = JSON.parse((await session.call('listMcpShopOrders')).text)
      return listed.orders.map((order: { tshirtSize: string }) => order.tshirtSize)
    }

    it("the operator's XXL policy: every variant of XXL is refused by the schema with a clear tool error and never ordered; exactly XXL waits for approval", async () => {
      await operatorWrites(XXL_NEEDS_APPROVAL(demo.mcpUrl))
      const session = await connect('Variants agent (v2 SDK)')
      const before = await sizesOrdered(session)
      for (const tshirtSize of XXL_VARIANTS) {
        const answer = await session.call('buyMcpShopItem', { ...ORDER, tshirtSize })
        expect(answer.isError, JSON.stringify(tshirtSize)).toBe(true)
        expect(answer.text, JSON.stringify(tshirtSize)).toMatch(
          schemaRefusal('buyMcpShopItem', 'tshirtSize'),
        )
      }
      // A size the schema accepts is the value the policy decides on and the handler orders.
      expect(await session.call('buyMcpShopItem', { ...ORDER, tshirtSize: 'XXL' })).toEqual(
        NEEDS_APPROVAL,
      )
      expect((await session.call('buyMcpShopItem', ORDER)).isError).toBe(false)
      expect((await sizesOrdered(session)).slice(before.length)).toEqual(['L'])
      await session.close()
    })

    it('the XXL policy: extra properties are refused, not dropped or read by the handler', async () => {
      const session = await connect('Extra properties agent (v2 SDK)')
      const before = await sizesOrdered(session)
      for (const extra of [
        { approved: true },
        { size: 'XXL' },
        { TshirtSize: 'XXL' },
        { 'tshirtSize ': 'XXL' },
      ]) {
        const answer = await session.call('buyMcpShopItem', { ...ORDER, tshirtSize: 'L', ...extra })
        expect(answer.isError, JSON.stringify(extra)).toBe(true)
        expect(answer.text).toMatch(
          /^Input validation error: Invalid arguments for tool buyMcpShopItem: Unrecognized key/,
        )
      }
      // Company and address are trimmed by the schema, so the policy and the order see the same text.
      expect(
        (await session.call('buyMcpShopItem', { ...ORDER, company: '  Globex  ' })).isError,
      ).toBe(false)
      const orders = JSON.parse((await session.call('listMcpShopOrders')).text).orders
      expect(orders.slice(before.length).map((o: { company: string }) => o.company)).toEqual([
        'Globex',
      ])
      // A blank company is missing, whatever spaces it is made of.
      expect(
        (await session.call('buyMcpShopItem', { ...ORDER, company: ' \u3000\t' })).text,
      ).toMatch(schemaRefusal('buyMcpShopItem', 'company'))
      await session.close()
    })

    it('the ban policies: demo-mode variants are refused by the schema and leave the state as it is; a banned person gets no order and no inventory, whatever the arguments', async () => {
      const session = await connect('Ban variants agent (v2 SDK)')
      expect((await session.call('setDemoMode', { mode: 'banned' })).text).toBe(
        'Demo mode set to banned.',
      )
      // `context.state.demoMode == "banned"` and the handler's check read one stored value, and
      // only "normal" or "banned" can be stored: no variant lifts the ban or sets a look-alike.
      for (const mode of [
        'normal ',
        'Normal',
        'NORMAL',
        'ｎｏｒｍａｌ',
        'n\u200bormal',
        ['normal'],
        0,
        null,
      ]) {
        const answer = await session.call('setDemoMode', { mode })
        expect(answer.isError, JSON.stringify(mode)).toBe(true)
        expect(answer.text).toMatch(schemaRefusal('setDemoMode', 'mode'))
      }
      expect((await session.call('setDemoMode', { mode: 'normal', extra: 1 })).isError).toBe(true)
      expect(await session.call('buyMcpShopItem', ORDER)).toEqual(BANNED_ORDER)
      expect(await session.call('listMcpShopInventory')).toEqual(BANNED_INVENTORY)
      for (const tshirtSize of ['xxl', ' L', 'Ｌ', 7]) {
        const answer = await session.call('buyMcpShopItem', { ...ORDER, tshirtSize })
        expect(answer.isError, JSON.stringify(tshirtSize)).toBe(true)
      }
      for (const args of [{ all: true }, { demoMode: 'normal' }]) {
        const answer = await session.call('listMcpShopInventory', args)
        expect(answer.isError, JSON.stringify(args)).toBe(true)
        expect(answer.text).toMatch(
          /^Input validation error: Invalid arguments for tool listMcpShopInventory: Unrecognized key/,
        )
      }
      // Still banned: nothing above changed the state.
      expect(await session.call('buyMcpShopItem', ORDER)).toEqual(BANNED_ORDER)
      expect((await session.call('prettyPlease', { please: 'pretty' })).isError).toBe(true)
      expect(await session.call('listMcpShopInventory')).toEqual(BANNED_INVENTORY)
      await session.call('clearDemoMode')
      await session.close()
    })

    it('the admin check: look-alike permissions are not shop:admin, and getUserInfo takes no arguments to smuggle one in', async () => {
      const { deps } = demo.deputy
      const lookAlikes = ['SHOP:ADMIN', 'shop:Admin', 'shop.admin', 'shop_admin', 'shop:admin2']
      await createRoles(deps).add({ name: 'look-alike-admins', permissions: lookAlikes }, OPERATOR)
      const mimic = { email: 'mimic@mcp.shop', password: 'a long mimic password 1' }
      await deps.users.create(
        {
          email: mimic.email,
          name: 'Mimic',
          password: mimic.password,
          roles: ['look-alike-admins'],
        },
        OPERATOR,
      )
      const session = await connect('Look-alike agent (v2 SDK)', mimic)
      expect(await session.call('getUserInfo')).toEqual(NOT_ADMIN)
      const [refused] = (await records('tool.refused', 'getUserInfo')).slice(-1)
      expect(refused).toMatchObject({
        reason: 'policy',
        data: { policies: ['mcp-shop.admin-user-info'] },
      })
      for (const args of [
        { permissions: ['shop:admin'] },
        { sub: demo.personId },
        { admin: true },
      ]) {
        const answer = await session.call('getUserInfo', args)
        expect(answer.isError, JSON.stringify(args)).toBe(true)
        expect(answer.text).toMatch(
          /^Input validation error: Invalid arguments for tool getUserInfo: Unrecognized key/,
        )
      }
      await session.close()
      // The real admin with extra arguments is refused by the schema too, before any policy.
      const admin = await connect('Admin extra agent (v2 SDK)')
      expect((await admin.call('getUserInfo', { verbose: true })).text).toMatch(
        /^Input validation error: Invalid arguments for tool getUserInfo: Unrecognized key/,
      )
      expect((await admin.call('getUserInfo')).isError).toBe(false)
      await admin.close()
    })
  })

  it("start-up never overwrites an operator's edit of a shop policy, nor brings back one they removed", async () => {
    const { deps } = demo.deputy
    await operatorWrites(`@id("mcp-shop.banned-order")
@description("Banned people do not get a shirt (the operator's words).")
@message("Not today, friend.")
forbid (principal, action == Deputy::Action::"${demo.mcpUrl}#buyMcpShopItem", resource)
when { context.state has demoMode && context.state.demoMode == "banned" };`)
    await deps.policies.remove('mcp-shop.banned-inventory', OPERATOR)
    const edited = await deps.policies.get('mcp-shop.banned-order')

    // `deputy demo` again on the same database: the shop declares its actions and installs
    // what is missing, which is nothing.
    demo = await demo.restart()
    const after = demo.deputy.deps.policies
    expect(await after.get('mcp-shop.banned-order')).toMatchObject({
      version: edited?.version,
      message: 'Not today, friend.',
    })
    expect(await after.get('mcp-shop.banned-inventory')).toBeUndefined()

    const session = await connect('After-restart agent (v2 SDK)')
    await session.call('setDemoMode', { mode: 'banned' })
    expect(await session.call('buyMcpShopItem', ORDER)).toEqual({
      text: 'Not today, friend.',
      isError: true,
    })
    // The inventory ban was removed by the operator; the handler's own check still holds.
    expect(await session.call('listMcpShopInventory')).toEqual(BANNED_INVENTORY)
    const [inventory] = (await records('tool.called', 'listMcpShopInventory')).slice(-1)
    expect(inventory).toMatchObject({
      decision: 'allow',
      data: { outcome: 'error', policies: ['mcp-shop.tools'] },
    })
    await session.call('clearDemoMode')
    await session.close()
  })
})
