import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { MESSAGES, readShopPolicies, SHOP_POLICIES_URL, SHOP_TOOLS } from '../src/index.js'

/**
 * The shop's Cedar policies carry the seed's exact words: the demo's refusals read the same
 * whether code or Cedar decides. (Deputy validates and decides them in packages/server/test/e2e.)
 */

/** Each statement's `@id`, `@message` and effect, in file order. */
function statements(text: string) {
  const found = text.matchAll(
    /@id\("([^"]+)"\)\s*(?:@description\("[^"]*"\)\s*)?(?:@message\("([^"]*)"\)\s*)?(permit|forbid)\s*\(([^;]*?)\)/g,
  )
  return [...found].map(([, id, message, effect, scope]) => ({ id, message, effect, scope }))
}

describe('policies/mcp-shop.cedar', () => {
  it("forbids with the seed's words: the ban on inventory and orders, and getUserInfo without shop:admin", async () => {
    const text = await readShopPolicies()
    expect(text).toBe(await readFile(SHOP_POLICIES_URL, 'utf8'))
    const byId = Object.fromEntries(statements(text).map((s) => [s.id, s]))
    expect(Object.keys(byId)).toEqual([
      'mcp-shop.tools',
      'mcp-shop.banned-inventory',
      'mcp-shop.banned-order',
      'mcp-shop.admin-user-info',
    ])
    expect(byId['mcp-shop.banned-inventory']).toMatchObject({
      effect: 'forbid',
      message: MESSAGES.bannedInventory,
    })
    expect(byId['mcp-shop.banned-inventory']?.scope).toContain(
      'Deputy::Action::"listMcpShopInventory"',
    )
    expect(byId['mcp-shop.banned-order']).toMatchObject({
      effect: 'forbid',
      message: MESSAGES.bannedOrder,
    })
    expect(byId['mcp-shop.banned-order']?.scope).toContain('Deputy::Action::"buyMcpShopItem"')
    expect(byId['mcp-shop.admin-user-info']).toMatchObject({
      effect: 'forbid',
      message: MESSAGES.notAdmin,
    })
    expect(text).toContain('unless { principal.permissions.contains("shop:admin") }')
  })

  it('permits every shop tool, since Cedar denies what no policy permits', async () => {
    const permit = statements(await readShopPolicies()).find((s) => s.effect === 'permit')
    for (const tool of SHOP_TOOLS) expect(permit?.scope).toContain(`Deputy::Action::"${tool.name}"`)
  })
})
