import { type Migration, Migrator } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { openStore } from '../../src/store/db.js'
import { MIGRATIONS } from '../../src/store/migrate.js'
import { renameActions } from '../../src/store/migrations/0007-policy-actions-by-resource.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 9 §9 on a database that already has policies: until migration 0007 a Cedar action was a
// tool's bare name (`Deputy::Action::"buyMcpShopItem"`) and `policy_actions` was keyed by it.
// Upgrading keeps every declaration that names its server, and gives every current policy that
// names a declared tool a new version naming that tool by its new id (`<resource>#<tool>`), so
// mcp.shop's seeded policies and an operator's edits of them go on deciding as before.

const SHOP = 'http://127.0.0.1:4000/mcp'
const ADMIN: Actor = { type: 'system', id: 'test' }
const T = 1_760_000_000_000

/** The migrations before 0007: what an existing database has applied. */
const BEFORE_0007: Record<string, Migration> = Object.fromEntries(
  Object.entries(MIGRATIONS).filter(([name]) => name < '0007'),
)

/** mcp.shop's policies as `deputy demo` installed them before 0007 (the old file, verbatim). */
const OLD_SHOP_TOOLS = `@id("mcp-shop.tools")
@description("The shop's tools are open to every signed-in person and the agents they allowed; the forbids below narrow it.")
permit (
  principal,
  action in [
    Deputy::Action::"setDemoMode",
    Deputy::Action::"clearDemoMode",
    Deputy::Action::"getUserInfo",
    Deputy::Action::"listMcpShopInventory",
    Deputy::Action::"buyMcpShopItem",
    Deputy::Action::"listMcpShopOrders",
    Deputy::Action::"prettyPlease"
  ],
  resource
);`
const OLD_BANNED_ORDER = `@id("mcp-shop.banned-order")
@description("A person the demo has banned does not get a shirt.")
@message("ABSOLUTELY NOT. GO AWAY 👋")
forbid (principal, action == Deputy::Action::"buyMcpShopItem", resource)
when { context.state has demoMode && context.state.demoMode == "banned" };`
/** The operator's edit of it: their words, their comment, their spacing. */
const EDITED_BANNED_ORDER = `@id("mcp-shop.banned-order")
@description("Banned people do not get a shirt (the operator's words).")
@message("Not today, friend.")
// Deputy::Action::"buyMcpShopItem" is the shop's order tool.
forbid (principal, action == Deputy :: Action :: "buyMcpShopItem", resource)
when { context.state has demoMode && context.state.demoMode == "banned" && action == Deputy::Action::"buyMcpShopItem" };`
const OLD_ADMIN = `@id("mcp-shop.admin-user-info")
@message("Sorry, bruh. You don't have these permissions.")
forbid (principal, action == Deputy::Action::"getUserInfo", resource)
unless { principal.permissions.contains("shop:admin") };`
/** Names an action no server declared: nothing to rename it to. */
const GHOST = `@id("ghost") forbid (principal, action == Deputy::Action::"launchRocket", resource);`
const READERS = `@id("docs.viewers") permit (principal, action == Deputy::Action::"read", resource)
when { context.relations.contains("viewer") };`

const TOOLS = [
  'setDemoMode',
  'clearDemoMode',
  'getUserInfo',
  'listMcpShopInventory',
  'buyMcpShopItem',
  'listMcpShopOrders',
  'prettyPlease',
]
const STATE = JSON.stringify({
  properties: { demoMode: { enum: ['normal', 'banned'], type: 'string' } },
  type: 'object',
})

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `migration 0007: actions by server on an existing database (issue 9 §9, ${dialect.name})`,
    () => {
      const open: { database?: TestDatabase; deputy?: TestDeputy }[] = []
      afterEach(async () => {
        for (const { database, deputy } of open.splice(0)) {
          if (deputy) await deputy.dispose()
          else await database?.dispose()
        }
      })

      /** A database as Deputy left it before 0007: the shop's tools declared, its policies stored. */
      async function oldDatabase(): Promise<TestDatabase> {
        const database = await dialect.create()
        open.push({ database })
        const store = openStore(database.url)
        try {
          const migrator = new Migrator({
            db: store.db,
            provider: { getMigrations: async () => BEFORE_0007 },
          })
          const { error } = await migrator.migrateToLatest()
          if (error) throw error
          const db = store.db
          await db
            .insertInto('policy_actions')
            .values([
              ...TOOLS.map((name) => ({
                name,
                resource: SHOP,
                description: null,
                arguments: JSON.stringify({ properties: {}, type: 'object' }),
                state: STATE,
                updated_at: T,
              })),
              // A declaration without a server: no tool call could ever name it.
              {
                name: 'orphan',
                resource: null as unknown as string,
                description: null,
                arguments: null,
                state: null,
                updated_at: T,
              },
            ])
            .execute()
          const version = (
            id: string,
            n: number,
            setVersion: number,
            text: string | null,
            by = 'system:mcp-shop',
          ) => ({
            policy_id: id,
            version: n,
            set_version: setVersion,
            text,
            created_at: T + setVersion,
            created_by: by,
          })
          await db
            .insertInto('policy_versions')
            .values([
              version('mcp-shop.tools', 1, 2, OLD_SHOP_TOOLS),
              version('mcp-shop.banned-order', 1, 2, OLD_BANNED_ORDER),
              version('mcp-shop.admin-user-info', 1, 2, OLD_ADMIN),
              version('mcp-shop.banned-order', 2, 3, EDITED_BANNED_ORDER, 'user:operator'),
              version('ghost', 1, 4, GHOST, 'user:operator'),
              version('docs.viewers', 1, 5, READERS, 'user:operator'),
              // Removed by the operator: it stays removed.
              version('mcp-shop.gone', 1, 2, OLD_ADMIN.replace('admin-user-info', 'gone')),
              version('mcp-shop.gone', 2, 6, null, 'user:operator'),
            ])
            .execute()
          await db.insertInto('policy_set').values({ id: 1, version: 6, updated_at: T }).execute()
        } finally {
          await store.close()
        }
        return database
      }

      it('keeps every declaration with its server, drops the one without, and renames the actions of every current policy in a new version', async () => {
        const database = await oldDatabase()
        const deputy = await startTestDeputy({ database })
        open.splice(0, open.length, { deputy })
        const { db, policies } = deputy.deps

        expect((await policies.actions()).map((a) => a.id)).toEqual([
          'read',
          ...TOOLS.map((tool) => `${SHOP}#${tool}`).sort(),
        ])
        expect(await policies.setVersion()).toBe(7)

        const versions = await db
          .selectFrom('policy_versions')
          .selectAll()
          .orderBy('policy_id')
          .orderBy('version')
          .execute()
        const by = (id: string) => versions.filter((v) => v.policy_id === id)
        // History is never rewritten: the old versions are as they were.
        expect(by('mcp-shop.banned-order').map((v) => [v.version, v.created_by])).toEqual([
          [1, 'system:mcp-shop'],
          [2, 'user:operator'],
          [3, 'system:0007-policy-actions-by-resource'],
        ])
        expect(by('mcp-shop.banned-order')[1]?.text).toBe(EDITED_BANNED_ORDER)
        // The operator's edit keeps their words, comment and spacing; only the action ids change.
        expect(by('mcp-shop.banned-order')[2]?.text).toBe(
          EDITED_BANNED_ORDER.replaceAll(
            '"buyMcpShopItem"',
            JSON.stringify(`${SHOP}#buyMcpShopItem`),
          ),
        )
        expect(by('mcp-shop.banned-order')[2]?.set_version).toBe(7)
        const tools = (await policies.get('mcp-shop.tools'))?.actions
        expect(tools).toEqual(TOOLS.map((tool) => `${SHOP}#${tool}`))
        expect((await policies.get('mcp-shop.admin-user-info'))?.actions).toEqual([
          `${SHOP}#getUserInfo`,
        ])
        // Nothing to rename: Deputy's own read, an action nobody declared, a removed policy.
        expect(by('docs.viewers')).toHaveLength(1)
        expect(by('ghost')).toHaveLength(1)
        expect(by('mcp-shop.gone').map((v) => v.text === null)).toEqual([false, true])
        expect(await policies.get('mcp-shop.gone')).toBeUndefined()
      })

      it("decides as before: the operator's ban, the admin check and the shop's permit, now for the shop's own tools only", async () => {
        const deputy = await startTestDeputy({ database: await oldDatabase() })
        open.splice(0, open.length, { deputy })
        const { users, policy } = deputy.deps
        const alice = (await users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)).id
        const call = (tool: string, state: Record<string, unknown> = {}) =>
          policy.authorizeToolCall({
            resource: SHOP,
            tool,
            sub: alice,
            clientId: undefined,
            scopes: [],
            arguments: {},
            state,
          })
        expect(await call('buyMcpShopItem')).toMatchObject({
          decision: 'allow',
          policies: ['mcp-shop.tools'],
        })
        expect(await call('buyMcpShopItem', { demoMode: 'banned' })).toMatchObject({
          decision: 'deny',
          policies: ['mcp-shop.banned-order'],
          message: 'Not today, friend.',
        })
        expect(await call('getUserInfo')).toMatchObject({
          decision: 'deny',
          policies: ['mcp-shop.admin-user-info'],
        })
        // Another server's tool of the same name is not the shop's: its policies do not reach it.
        const other = 'https://other.example/mcp'
        await deputy.deps.policies.declareActions(
          [{ name: 'buyMcpShopItem', resource: other }],
          ADMIN,
        )
        expect(
          await policy.authorizeToolCall({
            resource: other,
            tool: 'buyMcpShopItem',
            sub: alice,
            clientId: undefined,
            scopes: [],
            arguments: {},
            state: {},
          }),
        ).toMatchObject({ decision: 'deny', policies: [] })
      })

      it('a policy the upgrade could not rename (it names an action no server declares) does not hold declarations hostage', async () => {
        const deputy = await startTestDeputy({ database: await oldDatabase() })
        open.splice(0, open.length, { deputy })
        expect((await deputy.deps.policies.validate(GHOST)).ok).toBe(false)
        // A new server declares its tools: refused only for a policy it would break.
        await deputy.deps.policies.declareActions(
          [{ name: 'deleteFile', resource: 'https://files.example/mcp' }],
          ADMIN,
        )
        expect((await deputy.deps.policies.actions()).map((a) => a.id)).toContain(
          'https://files.example/mcp#deleteFile',
        )
      })
    },
  )
}

describe('migration 0007: renaming the actions a policy names', () => {
  const renamed = new Map([['buyMcpShopItem', `${SHOP}#buyMcpShopItem`]])

  it('changes only the action ids, and leaves a policy that names none of them alone', () => {
    expect(renameActions(OLD_BANNED_ORDER, renamed)).toBe(
      OLD_BANNED_ORDER.replace('"buyMcpShopItem"', `"${SHOP}#buyMcpShopItem"`),
    )
    expect(renameActions(READERS, renamed)).toBeUndefined()
    expect(renameActions('not cedar at all', renamed)).toBeUndefined()
    // A string that only looks like the id is not an action reference.
    const lookalike = `@id("x") @description("buyMcpShopItem") forbid (principal, action, resource) when { principal.name == "buyMcpShopItem" };`
    expect(renameActions(lookalike, renamed)).toBeUndefined()
  })

  it('a reference the text edit cannot reach (a comment inside it) is renamed in Cedar’s own rendering', () => {
    const odd = `@id("odd")
forbid (principal, action == Deputy::Action:: // the shop's order tool
  "buyMcpShopItem", resource);`
    const text = renameActions(odd, renamed)
    expect(text).toContain(`Deputy::Action::"${SHOP}#buyMcpShopItem"`)
    expect(text).not.toContain('"buyMcpShopItem"')
    expect(text).toContain('@id("odd")')
  })
})
