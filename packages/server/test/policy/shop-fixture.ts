import type { Deputy } from '../../src/deputy.js'
import { createRoles } from '../../src/identity/roles.js'
import type { ActionDeclaration } from '../../src/policy/types.js'

/**
 * mcp.shop as the policy tests meet it, whether they drive the admin API or the CLI: its tools,
 * its policies (and a misspelt set), and the people and agent an operator would have added.
 */

export const SYSTEM = { type: 'system', id: 'test' } as const
export const SHOP = 'https://shop.example/mcp'
const STATE = { type: 'object', properties: { demoMode: { type: 'string' } } }

/** mcp.shop's tools as the MCP kit declares them: arguments and the `demoMode` state. */
export const SHOP_ACTIONS: ActionDeclaration[] = [
  {
    name: 'buyMcpShopItem',
    resource: SHOP,
    description: 'Order a T-shirt',
    arguments: {
      type: 'object',
      properties: { item: { type: 'string' }, quantity: { type: 'integer' } },
      required: ['item'],
    },
    state: STATE,
  },
  { name: 'getUserInfo', resource: SHOP, state: STATE },
]

export const SHOP_POLICIES = `@id("shop.tools")
@description("Signed-in people may use the shop's tools.")
permit (
  principal,
  action in [Deputy::Action::"${SHOP}#buyMcpShopItem", Deputy::Action::"${SHOP}#getUserInfo"],
  resource
);

@id("shop.banned-order")
@description("A banned person does not get a shirt.")
@message("ABSOLUTELY NOT. GO AWAY 👋")
forbid (principal, action == Deputy::Action::"${SHOP}#buyMcpShopItem", resource)
when { context.state has demoMode && context.state.demoMode == "banned" };

@id("shop.admin-user-info")
@description("Only shop:admin sees account details.")
@message("Sorry, bruh. You don't have these permissions.")
forbid (principal, action == Deputy::Action::"${SHOP}#getUserInfo", resource)
unless { principal.permissions.contains("shop:admin") };
`

/** The second statement misspells `context.state` as `context.stat`: line 7, column 8. */
export const BAD_POLICIES = `@id("ok")
permit (principal, action == Deputy::Action::"${SHOP}#getUserInfo", resource);

@id("bad")
@description("Misspelt")
forbid (principal, action == Deputy::Action::"${SHOP}#buyMcpShopItem", resource)
when { context.stat.demoMode == "banned" };
`

export const APPROVAL_POLICY = `@id("shop.big-orders-need-approval")
@description("An order of more than 5 shirts needs the person's approval.")
forbid (principal, action == Deputy::Action::"${SHOP}#buyMcpShopItem", resource)
when { context.arguments has quantity && context.arguments.quantity > 5 }
unless { context.approved };
`

export const RETRIEVAL_POLICY = `@id("docs.viewers")
@description("People read the documents they are viewers of.")
permit (principal, action == Deputy::Action::"read", resource)
when { context.relations.contains("viewer") };
`

/**
 * What an MCP server and an operator would have done before: the shop's tools declared, a
 * `shop-admin` role, Alice (with it) and Bob, and a public agent. Returns Alice's and the agent's ids.
 */
export async function seedShop(
  deputy: Pick<Deputy, 'deps'>,
): Promise<{ aliceId: string; agentId: string }> {
  await deputy.deps.policies.declareActions(SHOP_ACTIONS, SYSTEM)
  await createRoles(deputy.deps).add({ name: 'shop-admin', permissions: ['shop:admin'] }, SYSTEM)
  const alice = await deputy.deps.users.create(
    { email: 'alice@example.com', name: 'Alice', roles: ['shop-admin'] },
    SYSTEM,
  )
  await deputy.deps.users.create({ email: 'bob@example.com', name: 'Bob' }, SYSTEM)
  const agent = await deputy.deps.clients.register(
    { name: 'Claude', redirectUris: ['http://127.0.0.1:3000/cb'], public: true },
    SYSTEM,
  )
  return { aliceId: alice.id, agentId: agent.client.clientId }
}
