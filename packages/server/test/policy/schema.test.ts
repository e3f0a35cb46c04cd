import { describe, expect, it } from 'vitest'
import {
  checkSchema,
  lineAndColumn,
  splitPolicyText,
  toCedarSchemaText,
  validatePolicies,
} from '../../src/policy/cedar.js'
import {
  asCedarSchema,
  buildCedarSchema,
  cedarTypeOfJsonSchema,
  contextRecordsOf,
  fitToCedarType,
  recordOfJsonSchema,
} from '../../src/policy/schema.js'
import type { ActionDeclaration } from '../../src/policy/types.js'

const BUY = 'https://shop.example/mcp#buyMcpShopItem'
const buy: ActionDeclaration = {
  name: 'buyMcpShopItem',
  resource: 'https://shop.example/mcp',
  arguments: {
    type: 'object',
    properties: {
      itemId: { type: 'string' },
      quantity: { type: 'integer' },
      tshirtSize: { type: 'string', enum: ['S', 'M', 'L', 'XL'] },
      giftWrap: { type: 'boolean' },
      price: { type: 'number' },
    },
    required: ['itemId', 'quantity'],
  },
  state: { type: 'object', properties: { demoMode: { type: 'string', enum: ['normal', 'ban'] } } },
}

/** Validates one policy against the schema for `actions`; the problems' messages and hints. */
function problemsOf(actions: ActionDeclaration[], policy: string) {
  return validatePolicies(asCedarSchema(buildCedarSchema(actions)), { p: policy }).map((p) => ({
    message: p.message,
    help: p.help,
  }))
}

// Issue 5 §1: "a Cedar schema for Deputy's model … one action per tool — and a context with the
// tool's arguments, the token's scopes, the time, the person's state … and whether the call was
// approved".
describe("Deputy's Cedar schema (issue 5 §1)", () => {
  it('is a schema Cedar accepts, with the model of CEDAR_NAMESPACE and an action per tool', () => {
    const schema = buildCedarSchema([buy])
    expect(checkSchema(asCedarSchema(schema))).toBeUndefined()
    const text = toCedarSchemaText(asCedarSchema(schema))
    expect(text).toContain('namespace Deputy')
    for (const entity of [
      'entity Role',
      'entity Group in [Group]',
      'entity Person in [Role, Group]',
      'entity Agent',
      'entity Server',
      'entity Tool in [Server]',
      'entity Folder in [Folder]',
      'entity Document in [Folder]',
    ])
      expect(text).toContain(entity)
    // Each tool is its server's, in the server's action group (issue 9 §9).
    expect(text).toContain('action "https://shop.example/mcp";')
    expect(text).toContain(
      'action "https://shop.example/mcp#buyMcpShopItem" in [Action::"https://shop.example/mcp"] appliesTo',
    )
    expect(text).toContain('action "read" appliesTo')
  })

  it("types a tool's context: agent, scopes, now, hour, approved, arguments and state", () => {
    const ok = [
      `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context has agent && context.agent.firstParty && context.agent has verifiedDomain && context.agent.verifiedDomain == "shop.example" };`,
      `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.scopes.contains("shop:buy") && context.hour >= 9 && context.approved };`,
      `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.now > datetime("2026-01-01") };`,
      `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.arguments.quantity <= 3 && context.arguments.itemId like "tee-*" };`,
      `forbid(principal, action == Deputy::Action::"${BUY}", resource) when { context.state has demoMode && context.state.demoMode == "ban" };`,
      'permit(principal in Deputy::Role::"shop-admin", action, resource is Deputy::Tool in Deputy::Server::"https://shop.example/mcp") when { principal.permissions.contains("shop:admin") && principal.email like "*@example.com" };',
      'permit(principal, action, resource) when { principal.hasTag("department") && principal.getTag("department") == "sales" };',
      'permit(principal, action == Deputy::Action::"read", resource is Deputy::Document in Deputy::Folder::"handbook") when { context.relations.contains("viewer") };',
    ]
    for (const policy of ok) expect(problemsOf([buy], policy), policy).toEqual([])
  })

  it('refuses what the model does not have, with Cedar\'s "did you mean"', () => {
    expect(
      problemsOf(
        [buy],
        `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.nw > datetime("2026-01-01") };`,
      ),
    ).toEqual([
      {
        message: `attribute \`nw\` in context for Deputy::Action::"${BUY}" not found`,
        help: 'did you mean `now`?',
      },
    ])
    // An optional argument must be tested with `has` first: strict validation says so.
    expect(
      problemsOf(
        [buy],
        `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.arguments.tshirtSize == "XL" };`,
      )[0]?.help,
    ).toBe("try testing for the attribute's presence with `context.arguments has tshirtSize && ..`")
    // The agent is absent when the person acts themself.
    expect(
      problemsOf(
        [buy],
        `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.agent.firstParty };`,
      ),
    ).toHaveLength(1)
    // A fraction has no Cedar type: `price` is left out, so a policy naming it is refused…
    expect(
      problemsOf(
        [buy],
        `permit(principal, action == Deputy::Action::"${BUY}", resource) when { context.arguments.price > 1 };`,
      )[0]?.message,
    ).toBe(`attribute \`arguments.price\` in context for Deputy::Action::"${BUY}" not found`)
    // …also behind `has`, where Cedar only warns that the policy can never apply: a forbid that
    // never applies protects nothing, so the warning is a problem too.
    expect(
      problemsOf(
        [buy],
        `forbid(principal, action == Deputy::Action::"${BUY}", resource) when { context.arguments has price && context.arguments.price > 100 };`,
      )[0]?.message,
    ).toBe('policy is impossible: the policy expression evaluates to false for all valid requests')
    // `read` has relations but no tool arguments.
    expect(
      problemsOf(
        [buy],
        'permit(principal, action == Deputy::Action::"read", resource) when { context.arguments has x };',
      ),
    ).toHaveLength(1)
    // An undeclared tool is no action.
    expect(
      problemsOf([buy], 'permit(principal, action == Deputy::Action::"refundOrder", resource);')[0]
        ?.message,
    ).toBe('unrecognized action `Deputy::Action::"refundOrder"`')
  })
})

describe('JSON Schema to Cedar types (issue 5 §1: the typed context.arguments and context.state)', () => {
  it('converts string, string enums, integer, boolean, arrays and objects', () => {
    expect(cedarTypeOfJsonSchema({ type: 'string' })).toEqual({ type: 'String' })
    expect(cedarTypeOfJsonSchema({ type: 'string', enum: ['a', 'b'] })).toEqual({ type: 'String' })
    expect(cedarTypeOfJsonSchema({ enum: ['a', 'b'] })).toEqual({ type: 'String' })
    expect(cedarTypeOfJsonSchema({ const: 'a' })).toEqual({ type: 'String' })
    expect(cedarTypeOfJsonSchema({ type: 'integer' })).toEqual({ type: 'Long' })
    expect(cedarTypeOfJsonSchema({ type: 'boolean' })).toEqual({ type: 'Boolean' })
    expect(cedarTypeOfJsonSchema({ type: 'array', items: { type: 'string' } })).toEqual({
      type: 'Set',
      element: { type: 'String' },
    })
    expect(
      cedarTypeOfJsonSchema({
        type: 'object',
        properties: {
          a: { type: 'string' },
          b: { type: 'object', properties: { c: { type: 'integer' } }, required: ['c'] },
        },
        required: ['b'],
      }),
    ).toEqual({
      type: 'Record',
      attributes: {
        a: { type: 'String', required: false },
        b: { type: 'Record', attributes: { c: { type: 'Long' } } },
      },
    })
  })

  it('leaves out what Cedar cannot represent, never guessing', () => {
    for (const schema of [
      { type: 'number' },
      { type: 'null' },
      { type: ['string', 'null'] },
      { anyOf: [{ type: 'string' }] },
      { oneOf: [{ type: 'string' }] },
      { $ref: '#/definitions/x' },
      { type: 'array' },
      { type: 'array', items: { type: 'number' } },
      { enum: ['a', 1] },
      {},
      'string',
      null,
    ])
      expect(cedarTypeOfJsonSchema(schema), JSON.stringify(schema)).toBeUndefined()
    expect(
      recordOfJsonSchema({
        type: 'object',
        properties: { price: { type: 'number' }, tags: { type: 'array' }, id: { type: 'string' } },
        required: ['price', 'id'],
      }),
    ).toEqual({ type: 'Record', attributes: { id: { type: 'String' } } })
    expect(recordOfJsonSchema(undefined)).toEqual({ type: 'Record', attributes: {} })
  })

  it('shapes a call to the declared types: what does not fit is left out', () => {
    const records = contextRecordsOf(buildCedarSchema([buy]), BUY)
    expect(records).toBeDefined()
    expect(
      fitToCedarType(records?.arguments as never, {
        itemId: 'tee-1',
        quantity: 2.5,
        tshirtSize: 'XL',
        giftWrap: 'yes',
        price: 9.99,
        extra: 'dropped',
      }),
    ).toEqual({ itemId: 'tee-1', tshirtSize: 'XL' })
    expect(fitToCedarType(records?.state as never, { demoMode: 'ban', other: 1 })).toEqual({
      demoMode: 'ban',
    })
    expect(fitToCedarType({ type: 'Set', element: { type: 'Long' } }, [1, 'x'])).toBeUndefined()
    expect(fitToCedarType({ type: 'Set', element: { type: 'Long' } }, [1, 2])).toEqual([1, 2])
    expect(fitToCedarType(records?.arguments as never, 'not an object')).toBeUndefined()
    expect(contextRecordsOf(buildCedarSchema([buy]), 'read')).toBeUndefined()
    expect(contextRecordsOf(buildCedarSchema([buy]), 'nope')).toBeUndefined()
    // The bare tool name, and the server's action group, are not the tool's action.
    expect(contextRecordsOf(buildCedarSchema([buy]), 'buyMcpShopItem')).toBeUndefined()
    expect(contextRecordsOf(buildCedarSchema([buy]), 'https://shop.example/mcp')).toBeUndefined()
  })
})

describe('policy text helpers (issue 5 §1: line and column of a problem)', () => {
  it('splits a text into statements in written order, with their offsets', () => {
    let text = '// header; with a semicolon\n'
    for (let i = 0; i < 12; i++)
      text += `@id("p${i}") @description("a; b") permit(principal, action, resource);\n`
    const split = splitPolicyText(text)
    expect(split.ok).toBe(true)
    if (!split.ok) return
    expect(split.statements.map((s) => s.text.match(/p\d+/)?.[0])).toEqual(
      Array.from({ length: 12 }, (_, i) => `p${i}`),
    )
    for (const [i, s] of split.statements.entries()) {
      expect(text.slice(s.offset, s.offset + s.text.length)).toBe(s.text)
      expect(lineAndColumn(text, s.offset)).toEqual({ line: i + 2, column: 1 })
    }
  })

  it('places a syntax error after multi-byte characters at the right column', () => {
    const text =
      '// héllo 😀\n@description("café ✓") permit(principal, action, resource) when { 1 + };'
    const split = splitPolicyText(text)
    expect(split.ok).toBe(false)
    if (split.ok) return
    expect(split.problems[0]).toMatchObject({
      line: 2,
      // é is two bytes in UTF-8 and ✓ three, but one UTF-16 unit each.
      column: (text.split('\n')[1] as string).indexOf('}') + 1,
      message: 'unexpected token `}`',
    })
  })

  it('refuses templates', () => {
    const split = splitPolicyText(
      '@id("a") permit(principal, action, resource);\n@id("t") permit(principal == ?principal, action, resource);',
    )
    expect(split).toMatchObject({
      ok: false,
      problems: [{ line: 2, column: 1, message: expect.stringMatching(/templates/) }],
    })
  })
})
