import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import {
  MESSAGES,
  readShopPolicies,
  SHOP_POLICIES_URL,
  SHOP_TOOLS,
  shopPolicies,
} from '../src/index.js'

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
      'Deputy::Action::"{resource}#listMcpShopInventory"',
    )
    expect(byId['mcp-shop.banned-order']).toMatchObject({
      effect: 'forbid',
      message: MESSAGES.bannedOrder,
    })
    expect(byId['mcp-shop.banned-order']?.scope).toContain(
      'Deputy::Action::"{resource}#buyMcpShopItem"',
    )
    expect(byId['mcp-shop.admin-user-info']).toMatchObject({
      effect: 'forbid',
      message: MESSAGES.notAdmin,
    })
    expect(text).toContain('unless { principal.permissions.contains("shop:admin") }')
  })

  it('permits every tool of the shop (its action group), since Cedar denies what no policy permits', async () => {
    const permit = statements(await readShopPolicies()).find((s) => s.effect === 'permit')
    expect(permit?.scope).toContain('action in Deputy::Action::"{resource}"')
    expect(SHOP_TOOLS.length).toBe(7)
  })

  it("names the shop's own actions once installed for a resource, and no other server's (issue 9 §9)", async () => {
    const text = await shopPolicies('https://shop.example/mcp')
    expect(text).toContain(
      'permit (principal, action in Deputy::Action::"https://shop.example/mcp", resource);',
    )
    expect(text).toContain('Deputy::Action::"https://shop.example/mcp#buyMcpShopItem"')
    // Every action id the file names is one of the shop's tools on that resource.
    const policies = text
      .split('\n')
      .filter((line) => !line.startsWith('//'))
      .join('\n')
    const named = [...policies.matchAll(/Deputy::Action::"([^"]*)"/g)].map(([, id]) => id)
    expect(named.length).toBe(4)
    const ids = new Set([
      'https://shop.example/mcp',
      ...SHOP_TOOLS.map((t) => `https://shop.example/mcp#${t.name}`),
    ])
    for (const id of named) expect(ids.has(id as string), id).toBe(true)
    // The comments may say {resource}; the policies do not.
    expect(
      text.split('\n').filter((line) => !line.startsWith('//') && line.includes('{resource}')),
    ).toEqual([])
  })
})
