import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import {
  readTradingPolicies,
  TRADING_POLICIES_URL,
  TRADING_TOOLS,
  tradingPolicies,
} from '../src/index.js'

/**
 * policies/trading.cedar as written: a permit for the server's tools and two forbids that hold a
 * buy for the person's approval (`unless { context.approved }`). Deputy validates and decides
 * them in packages/server/test/e2e/trading-policies.test.ts.
 */

/** Each statement's `@id`, `@message`, effect, scope and body, in file order. */
function statements(text: string) {
  const code = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('//'))
    .join('\n')
  const found = code.matchAll(
    /@id\("([^"]+)"\)\s*(?:@description\("[^"]*"\)\s*)?(?:@message\("([^"]*)"\)\s*)?(permit|forbid)\s*\(([^;]*?)\)([^;]*);/g,
  )
  return [...found].map(([, id, message, effect, scope, body]) => ({
    id,
    message,
    effect,
    scope,
    body,
  }))
}

describe('policies/trading.cedar', () => {
  it('permits the trading tools and holds over-limit and restricted buys for approval', async () => {
    const text = await readTradingPolicies()
    expect(text).toBe(await readFile(TRADING_POLICIES_URL, 'utf8'))
    const byId = Object.fromEntries(statements(text).map((s) => [s.id, s]))
    expect(Object.keys(byId)).toEqual([
      'trading.tools',
      'trading.over-limit',
      'trading.restricted-stock',
    ])
    expect(byId['trading.tools']).toMatchObject({ effect: 'permit' })
    expect(byId['trading.tools']?.scope).toContain('action in Deputy::Action::"{resource}"')
    for (const id of ['trading.over-limit', 'trading.restricted-stock']) {
      expect(byId[id]?.effect).toBe('forbid')
      expect(byId[id]?.scope).toContain('action == Deputy::Action::"{resource}#buy_stock"')
      // A forbid the person's approval lifts is a needs-approval outcome (docs/policies.md).
      expect(byId[id]?.body.trim().endsWith('unless { context.approved }')).toBe(true)
    }
    expect(byId['trading.over-limit']?.body).toContain(
      'context.arguments.quantity * context.arguments.maxPriceCents > context.state.limitCents',
    )
    expect(byId['trading.restricted-stock']?.body).toContain(
      '["GRDN"].contains(context.arguments.symbol)',
    )
  })

  it("names the server's own actions once installed for a resource, and no other's", async () => {
    const text = await tradingPolicies('https://deputy.example/trading/mcp')
    const code = text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('//'))
      .join('\n')
    const named = [...code.matchAll(/Deputy::Action::"([^"]*)"/g)].map(([, id]) => id)
    expect(named).toEqual([
      'https://deputy.example/trading/mcp',
      'https://deputy.example/trading/mcp#buy_stock',
      'https://deputy.example/trading/mcp#buy_stock',
    ])
    const ids = new Set([
      'https://deputy.example/trading/mcp',
      ...TRADING_TOOLS.map((tool) => `https://deputy.example/trading/mcp#${tool.name}`),
    ])
    for (const id of named) expect(ids.has(id as string), id).toBe(true)
    expect(code).not.toContain('{resource}')
    // A resource is put in as a Cedar string literal, whatever it holds.
    expect(await tradingPolicies('https://x.example/"a\\b')).toContain(
      'Deputy::Action::"https://x.example/\\"a\\\\b#buy_stock"',
    )
  })
})
