import { afterEach, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import type { Actor } from '../../src/audit/types.js'
import type { DeputyError } from '../../src/lib/errors.js'
import { createPolicies } from '../../src/policy/policies.js'
import type { ActionDeclaration, Policies, PolicyProblem } from '../../src/policy/types.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'

const actor: Actor = { type: 'user', id: 'operator-1', label: 'ops@example.com' }
const T0 = Date.parse('2026-03-02T10:00:00.000Z')

const SHOP = 'https://shop.example/mcp'
const BUY_ID = `${SHOP}#buyMcpShopItem`
const BUY = `Deputy::Action::"${BUY_ID}"`

/** The mcp.shop tool, with `tshirtSize` among its arguments or not. */
function buyTool(argumentsSchema: Record<string, unknown>): ActionDeclaration {
  return {
    name: 'buyMcpShopItem',
    resource: SHOP,
    description: 'Buy an item',
    arguments: argumentsSchema,
    state: { type: 'object', properties: { demoMode: { type: 'string' } } },
  }
}
const WITHOUT_SIZE = { type: 'object', properties: { itemId: { type: 'string' } } }
const WITH_SIZE = {
  type: 'object',
  properties: { itemId: { type: 'string' }, tshirtSize: { type: 'string', enum: ['M', 'XXL'] } },
  required: ['itemId', 'tshirtSize'],
}

const NO_XXL = `@id("no-xxl")
@message("XXL is sold out")
forbid(principal, action == ${BUY}, resource)
when { context.arguments.tshirtSize == "XXL" };`

/** Line and column (1-based, UTF-16 units) of `needle` in `text`, as an editor shows them. */
function positionOf(text: string, needle: string): { line: number; column: number } {
  const index = text.indexOf(needle)
  const before = text.slice(0, index).split('\n')
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 }
}

/** The error a promise rejects with. */
async function refusal(promise: Promise<unknown>): Promise<DeputyError> {
  try {
    await promise
  } catch (err) {
    return err as DeputyError
  }
  throw new Error('expected a refusal')
}

// Issue 5 §1: "Policies live in the database, versioned; each write is validated against the
// schema and a bad policy is refused with its line, column and message, nothing stored."
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`policy store on ${dialect.name} (issue 5 §1)`, () => {
    const opened: { database: TestDatabase; stores: Store[] }[] = []
    let now = T0

    afterEach(async () => {
      for (const { database, stores } of opened.splice(0)) {
        for (const store of stores) await store.close()
        await database.dispose()
      }
    })

    /** A fresh database with the policy store on it (and a way to open a second connection). */
    async function fresh() {
      const database = await dialect.create()
      const store = openStore(database.url)
      const entry = { database, stores: [store] }
      opened.push(entry)
      await migrateToLatest(store)
      const clock = { now: () => new Date(now) }
      const policies = createPolicies({ store, clock, audit: createAuditLog(store, clock) })
      return {
        store,
        policies,
        /** Another connection pool on the same database, as a second process would have. */
        second(): Policies {
          const other = openStore(database.url)
          entry.stores.push(other)
          return createPolicies({ store: other, clock, audit: createAuditLog(other, clock) })
        },
        async events(type: string) {
          const rows = await store.db
            .selectFrom('audit_events')
            .selectAll()
            .where('type', '=', type)
            .orderBy('seq')
            .execute()
          return rows.map((r) => ({
            actor: JSON.parse(r.actor) as Actor,
            target: JSON.parse(r.target ?? 'null') as { type: string; id: string } | null,
            data: JSON.parse(r.data) as Record<string, unknown>,
          }))
        },
        async rowCount() {
          const row = await store.db
            .selectFrom('policy_versions')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
          return Number(row.n)
        },
      }
    }

    it('stores a policy under its @id with version 1, its annotations and its actions', async () => {
      const { policies, events } = await fresh()
      await policies.declareActions([buyTool(WITH_SIZE)], actor)
      const before = await policies.setVersion()
      const [stored] = await policies.put(NO_XXL, actor)
      expect(stored).toEqual({
        id: 'no-xxl',
        version: 1,
        setVersion: before + 1,
        effect: 'forbid',
        text: NO_XXL,
        description: null,
        message: 'XXL is sold out',
        actions: [BUY_ID],
        createdAt: new Date(T0).toISOString(),
        createdBy: 'user:operator-1',
      })
      expect(await policies.get('no-xxl')).toEqual(stored)
      expect(await policies.list()).toEqual([stored])
      expect(await policies.setVersion()).toBe(before + 1)
      const [event] = await events('policy.written')
      expect(event).toEqual({
        actor,
        target: { type: 'policy', id: 'no-xxl' },
        data: { ids: ['no-xxl'], versions: [1], set_version: before + 1 },
      })
    })

    it('stores every statement of a text in one write: one set version, @description, scopes of all kinds', async () => {
      const { policies, events } = await fresh()
      await policies.declareActions([buyTool(WITH_SIZE)], actor)
      const text = `// the shop's rules
@id("shop-admin")
@description("Shop admins may do anything on the shop")
permit(principal in Deputy::Role::"shop-admin", action, resource);

@id("readers") permit(principal, action in [Deputy::Action::"read"], resource)
  when { context.relations.contains("viewer") };
@id("buyers") permit(principal, action in ${BUY}, resource);
`
      const stored = await policies.put(text, actor)
      expect(
        stored.map(({ id, version, setVersion, effect, description, actions }) => ({
          id,
          version,
          setVersion,
          effect,
          description,
          actions,
        })),
      ).toEqual([
        {
          id: 'shop-admin',
          version: 1,
          setVersion: 2,
          effect: 'permit',
          description: 'Shop admins may do anything on the shop',
          actions: null,
        },
        {
          id: 'readers',
          version: 1,
          setVersion: 2,
          effect: 'permit',
          description: null,
          actions: ['read'],
        },
        {
          id: 'buyers',
          version: 1,
          setVersion: 2,
          effect: 'permit',
          description: null,
          actions: [BUY_ID],
        },
      ])
      // The text of each statement is exactly what was written for it.
      expect(stored[1]?.text).toBe(
        '@id("readers") permit(principal, action in [Deputy::Action::"read"], resource)\n  when { context.relations.contains("viewer") };',
      )
      expect((await policies.list()).map((p) => p.id)).toEqual(['buyers', 'readers', 'shop-admin'])
      expect(await policies.setVersion()).toBe(2)
      expect((await events('policy.written')).map((e) => e.data)).toEqual([
        { ids: ['shop-admin', 'readers', 'buyers'], versions: [1, 1, 1], set_version: 2 },
      ])
    })

    it('refuses a syntax error on line 3 of a multi-statement text with its line, column and message; nothing stored', async () => {
      const { policies, rowCount, events } = await fresh()
      const text = [
        '@id("business-hours")',
        'permit(principal, action, resource)',
        'when { context.hour >= 9 && };',
        '',
        '@id("second") forbid(principal, action, resource);',
      ].join('\n')
      const err = await refusal(policies.put(text, actor))
      expect(err.code).toBe('ERR_POLICY_INVALID')
      expect(err.status).toBe(400)
      const at = positionOf(text, '};')
      expect(at).toEqual({ line: 3, column: 29 })
      expect(err.problems).toEqual([
        {
          line: 3,
          column: 29,
          message: 'unexpected token `}`',
          help: expect.stringMatching(/^expected /),
        },
      ])
      // One line, naming the place and the problem.
      expect(err.message).toMatch(/^line 3, column 29: unexpected token `}` \(expected /)
      expect(err.message).not.toContain('\n')
      expect(await rowCount()).toBe(0)
      expect(await policies.setVersion()).toBe(0)
      expect(await events('policy.written')).toEqual([])
      // validate() says the same without writing.
      expect(await policies.validate(text)).toEqual({ ok: false, problems: err.problems })
    })

    it('refuses an unknown context attribute found by strict validation, at its place in the whole text, with "did you mean"', async () => {
      const { policies, rowCount } = await fresh()
      await policies.declareActions([buyTool(WITH_SIZE)], actor)
      const text = `@id("buyers")
permit(principal, action == ${BUY}, resource);

// No shopping at night.
@id("night")
@description("Nothing is bought between midnight and six")
forbid(principal, action == ${BUY}, resource)
when { context.hours < 6 };
`
      const err = await refusal(policies.put(text, actor))
      expect(err.code).toBe('ERR_POLICY_INVALID')
      expect(positionOf(text, 'context.hours')).toEqual({ line: 8, column: 8 })
      expect(err.problems).toEqual([
        {
          policyId: 'night',
          line: 8,
          column: 8,
          message: `attribute \`hours\` in context for ${BUY} not found`,
          help: 'did you mean `hour`?',
        },
      ])
      expect(err.message).toBe(
        `policy night, line 8, column 8: attribute \`hours\` in context for ${BUY} not found (did you mean \`hour\`?)`,
      )
      // The first statement was valid, but a refused write stores nothing at all.
      expect(await rowCount()).toBe(0)
      expect(await policies.list()).toEqual([])
      expect(await policies.history('buyers')).toEqual([])
      expect(await policies.setVersion()).toBe(1)
    })

    it("counts columns as editors do (UTF-16 units), not in Cedar's UTF-8 bytes, after accents and emoji", async () => {
      const { policies } = await fresh()
      // Cedar reports UTF-8 byte offsets: é is two bytes, 😀 four (and two UTF-16 units).
      const inOne =
        '@id("cafe") @description("Für alle 😀") permit(principal, action, resource) when { context.nope };'
      expect((await refusal(policies.put(inOne, actor))).problems).toEqual([
        expect.objectContaining({ policyId: 'cafe', line: 1, column: 84 }),
      ])
      expect(positionOf(inOne, 'context.nope')).toEqual({ line: 1, column: 84 })
      // The statement's own offset after multi-byte characters of an earlier one on the same line.
      const afterAnother =
        '@id("a") @description("😀 é") permit(principal, action, resource); @id("b") permit(principal, action, resource) when { context.nope };'
      expect((await refusal(policies.put(afterAnother, actor))).problems).toEqual([
        expect.objectContaining({ policyId: 'b', ...positionOf(afterAnother, 'context.nope') }),
      ])
    })

    it('needs an id for every statement: @id, or one given for a single statement', async () => {
      const { policies, rowCount } = await fresh()
      const one = 'permit(principal, action, resource);'
      const [stored] = await policies.put(one, actor, { id: 'everyone' })
      expect(stored).toMatchObject({ id: 'everyone', version: 1, text: one })

      const cases: [string, { id?: string } | undefined, Partial<PolicyProblem>][] = [
        [one, undefined, { line: 1, column: 1, message: 'the policy has no id' }],
        [
          `@id("a") ${one}\n${one}`,
          undefined,
          { line: 2, column: 1, message: 'the policy has no id' },
        ],
        [
          `@id("a") ${one}\n@id("b") ${one}`,
          { id: 'a' },
          { line: 2, column: 1, message: 'an id was given for one policy, but the text holds 2' },
        ],
        [
          `@id("a") ${one}\n\n  @id("a") forbid(principal, action, resource);`,
          undefined,
          { policyId: 'a', line: 3, column: 3, message: '@id("a") is used twice in this text' },
        ],
        [
          `@id("has space") ${one}`,
          undefined,
          { line: 1, column: 1, message: 'policy id "has space" is not valid' },
        ],
        [`@id("${'x'.repeat(129)}") ${one}`, undefined, { line: 1, column: 1 }],
        [
          `@id("") ${one}`,
          undefined,
          { message: '@id needs a value, e.g. @id("ban-on-weekends")' },
        ],
        [
          `@id("a") ${one}`,
          { id: 'b' },
          { message: `the policy's @id("a") differs from the id given (b)` },
        ],
        [one, { id: 'no/slash' }, { message: 'policy id "no/slash" is not valid' }],
        ['   // only a comment\n', undefined, { line: 1, column: 1 }],
        [
          `@id("t") permit(principal == ?principal, action, resource);`,
          undefined,
          { message: 'templates (`?principal`, `?resource`) are not supported' },
        ],
      ]
      for (const [text, options, problem] of cases) {
        const err = await refusal(policies.put(text, actor, options))
        expect(err.code, text).toBe('ERR_POLICY_INVALID')
        expect(err.problems?.[0], text).toMatchObject(problem)
      }
      expect(await rowCount()).toBe(1)
    })

    it('gives a changed policy its next version, keeps every version, and bumps the set version once per write', async () => {
      const { policies, events } = await fresh()
      const v1 = '@id("p") permit(principal, action, resource);'
      const v2 = '@id("p") permit(principal, action, resource) when { context.approved };'
      expect((await policies.put(v1, actor))[0]).toMatchObject({ version: 1, setVersion: 1 })
      now = T0 + 1000
      expect((await policies.put(v2, actor))[0]).toMatchObject({ version: 2, setVersion: 2 })
      expect(await policies.setVersion()).toBe(2)

      // The same text again changes nothing: no version, no set version, no event.
      expect((await policies.put(v2, actor))[0]).toMatchObject({ version: 2, setVersion: 2 })
      expect(await policies.setVersion()).toBe(2)
      expect(await events('policy.written')).toHaveLength(2)

      // A text with one unchanged and one new statement: only the new one is written.
      const both = `${v2}\n@id("q") forbid(principal, action, resource) unless { context.approved };`
      const stored = await policies.put(both, actor)
      expect(stored.map((p) => [p.id, p.version, p.setVersion])).toEqual([
        ['p', 2, 2],
        ['q', 1, 3],
      ])
      expect((await events('policy.written')).at(-1)?.data).toEqual({
        ids: ['q'],
        versions: [1],
        set_version: 3,
      })

      expect(await policies.history('p')).toEqual([
        {
          id: 'p',
          version: 1,
          setVersion: 1,
          text: v1,
          createdAt: new Date(T0).toISOString(),
          createdBy: 'user:operator-1',
        },
        {
          id: 'p',
          version: 2,
          setVersion: 2,
          text: v2,
          createdAt: new Date(T0 + 1000).toISOString(),
          createdBy: 'user:operator-1',
        },
      ])
      expect((await policies.get('p'))?.text).toBe(v2)
      expect(await policies.history('unknown')).toEqual([])
      expect(await policies.get('unknown')).toBeUndefined()
      now = T0
    })

    it('removes a policy as a version without text, bumps the set version, and refuses an unknown id', async () => {
      const { policies, events } = await fresh()
      const text = '@id("p") permit(principal, action, resource);'
      await policies.put(text, actor)
      await policies.put('@id("keep") forbid(principal, action, resource);', actor)
      await policies.remove('p', actor)

      expect(await policies.get('p')).toBeUndefined()
      expect((await policies.list()).map((p) => p.id)).toEqual(['keep'])
      expect(await policies.setVersion()).toBe(3)
      expect((await policies.history('p')).map((v) => [v.version, v.setVersion, v.text])).toEqual([
        [1, 1, text],
        [2, 3, null],
      ])
      expect(await events('policy.removed')).toEqual([
        {
          actor,
          target: { type: 'policy', id: 'p' },
          data: { id: 'p', version: 2, set_version: 3 },
        },
      ])

      for (const id of ['p', 'never-was', 'not valid']) {
        const err = await refusal(policies.remove(id, actor))
        expect(err.code, id).toBe('ERR_NOT_FOUND')
      }
      expect(await policies.setVersion()).toBe(3)
      expect(await events('policy.removed')).toHaveLength(1)

      // Written again, it continues its history.
      expect((await policies.put(text, actor))[0]).toMatchObject({ version: 3, setVersion: 4 })
    })

    it('validates a policy using context.arguments.tshirtSize only once the tool is declared with that argument', async () => {
      const { policies, events } = await fresh()
      // No tool declared: the action itself is unknown.
      expect((await refusal(policies.put(NO_XXL, actor))).problems).toEqual([
        {
          policyId: 'no-xxl',
          ...positionOf(NO_XXL, BUY),
          message: `unrecognized action \`${BUY}\``,
          help: 'did you mean `Deputy::Action::"read"`?',
        },
      ])
      expect((await policies.validate(NO_XXL)).ok).toBe(false)

      // Declared without the argument: the attribute is unknown.
      await policies.declareActions([buyTool(WITHOUT_SIZE)], actor)
      expect(await policies.setVersion()).toBe(1)
      expect((await refusal(policies.put(NO_XXL, actor))).problems).toEqual([
        expect.objectContaining({
          policyId: 'no-xxl',
          ...positionOf(NO_XXL, 'context.arguments.tshirtSize'),
          message: `attribute \`arguments.tshirtSize\` in context for ${BUY} not found`,
        }),
      ])

      // Declared with it: the same text validates and is stored.
      await policies.declareActions([buyTool(WITH_SIZE)], actor)
      expect(await policies.setVersion()).toBe(2)
      expect(await policies.validate(NO_XXL)).toEqual({
        ok: true,
        policies: [
          {
            id: 'no-xxl',
            effect: 'forbid',
            text: NO_XXL,
            description: null,
            message: 'XXL is sold out',
            actions: [BUY_ID],
          },
        ],
      })
      await policies.put(NO_XXL, actor)
      expect(await policies.setVersion()).toBe(3)

      // The schema in force shows it: the tool's action on Deputy::Tool with typed arguments.
      const schema = (await policies.schema()) as {
        Deputy: {
          actions: Record<string, { appliesTo: Record<string, unknown>; memberOf?: unknown }>
        }
      }
      expect(schema.Deputy.actions[BUY_ID]).toMatchObject({ memberOf: [{ id: SHOP }] })
      expect(schema.Deputy.actions[BUY_ID]?.appliesTo).toMatchObject({
        principalTypes: ['Person'],
        resourceTypes: ['Tool'],
        context: {
          attributes: {
            arguments: {
              type: 'Record',
              attributes: { itemId: { type: 'String' }, tshirtSize: { type: 'String' } },
            },
            state: { attributes: { demoMode: { type: 'String', required: false } } },
          },
        },
      })
      // The tool's action, its server's action group, and Deputy's own read.
      expect(Object.keys(schema.Deputy.actions).sort()).toEqual([SHOP, BUY_ID, 'read'].sort())
      expect((await policies.actions()).map((a) => [a.id, a.name, a.resource])).toEqual([
        ['read', 'read', null],
        [BUY_ID, 'buyMcpShopItem', SHOP],
      ])

      // The same declaration again (keys in another order) is no change.
      await policies.declareActions(
        [
          {
            state: { properties: { demoMode: { type: 'string' } }, type: 'object' },
            arguments: {
              required: ['itemId', 'tshirtSize'],
              properties: {
                tshirtSize: { enum: ['M', 'XXL'], type: 'string' },
                itemId: { type: 'string' },
              },
              type: 'object',
            },
            description: 'Buy an item',
            resource: SHOP,
            name: 'buyMcpShopItem',
          },
        ],
        actor,
      )
      expect(await policies.setVersion()).toBe(3)
      const declared = await events('policy.actions-declared')
      expect(declared).toEqual([
        {
          actor,
          target: { type: 'resource', id: SHOP },
          data: { actions: [BUY_ID], set_version: 1 },
        },
        {
          actor,
          target: { type: 'resource', id: SHOP },
          data: { actions: [BUY_ID], set_version: 2 },
        },
      ])
    })

    it('refuses a declaration that would break a stored policy, naming it; nothing changes', async () => {
      const { policies, events } = await fresh()
      await policies.declareActions([buyTool(WITH_SIZE)], actor)
      await policies.put(NO_XXL, actor)
      const version = await policies.setVersion()
      const before = await policies.actions()

      const dropped = await refusal(policies.declareActions([buyTool(WITHOUT_SIZE)], actor))
      expect(dropped.code).toBe('ERR_POLICY_INVALID')
      expect(dropped.message).toMatch(
        /^these action declarations would break policy no-xxl: line 4, column 8: attribute `arguments.tshirtSize` in context for Deputy::Action::"https:\/\/shop\.example\/mcp#buyMcpShopItem" not found/,
      )
      expect(dropped.problems).toEqual([
        expect.objectContaining({ policyId: 'no-xxl', line: 4, column: 8 }),
      ])

      // Made optional, the policy would read it without `has`: refused as well.
      const optional = { ...WITH_SIZE, required: ['itemId'] }
      const unsafe = await refusal(policies.declareActions([buyTool(optional)], actor))
      expect(unsafe.problems).toEqual([
        expect.objectContaining({
          policyId: 'no-xxl',
          help: "try testing for the attribute's presence with `context.arguments has tshirtSize && ..`",
        }),
      ])

      expect(await policies.actions()).toEqual(before)
      expect(await policies.setVersion()).toBe(version)
      expect(await events('policy.actions-declared')).toHaveLength(1)

      // Once the policy is gone, the same declaration goes through.
      await policies.remove('no-xxl', actor)
      await policies.declareActions([buyTool(WITHOUT_SIZE)], actor)
      expect(await policies.setVersion()).toBe(version + 2)
    })

    it('refuses malformed action declarations', async () => {
      const { policies } = await fresh()
      const cases: [unknown, RegExp][] = [
        [[{ name: 'has space', resource: SHOP }], /^actions\.0\.name must be 1 to 128 of/],
        [[{ name: 'tool', resource: null }], /^actions\.0\.resource/],
        [
          [{ name: 'tool', resource: 'shop' }],
          /^actions\.0\.resource must be an absolute http\(s\) URI/,
        ],
        [
          [{ name: 'tool', resource: `${SHOP}#x` }],
          /^actions\.0\.resource must be an absolute http\(s\) URI without a fragment/,
        ],
        [
          [{ name: 'tool', resource: SHOP, arguments: { type: 'string' } }],
          /^actions\.0\.arguments must be an object JSON Schema/,
        ],
        [
          [{ name: 'tool', resource: SHOP, state: { properties: {} } }],
          /^actions\.0\.state must be an object JSON Schema/,
        ],
        [
          [
            { name: 'tool', resource: SHOP },
            { name: 'tool', resource: SHOP },
          ],
          /^actions names the same tool of the same server twice/,
        ],
        [[{ name: 'tool', resource: SHOP, surprise: true }], /^actions\.0/],
        [[{ name: 'tool' }], /^actions\.0\.resource/],
      ]
      for (const [actions, message] of cases) {
        const err = await refusal(policies.declareActions(actions as ActionDeclaration[], actor))
        expect(err.code, JSON.stringify(actions)).toBe('ERR_INVALID_INPUT')
        expect(err.message).toMatch(message)
      }
      expect(await policies.setVersion()).toBe(0)
      expect((await policies.actions()).map((a) => a.name)).toEqual(['read'])
    })

    it('serialises concurrent writes: each gets its own set version, the first creates the set row once', async () => {
      const { policies } = await fresh()
      const ids = ['a', 'b', 'c', 'd', 'e', 'f']
      const results = await Promise.all(
        ids.map((id) => policies.put(`@id("${id}") permit(principal, action, resource);`, actor)),
      )
      expect(results.map(([p]) => p?.setVersion).sort()).toEqual([1, 2, 3, 4, 5, 6])
      expect(await policies.setVersion()).toBe(6)

      // The same id from several writers at once: distinct versions, none lost.
      const texts = [1, 2, 3, 4].map(
        (n) => `@id("same") permit(principal, action, resource) when { context.hour > ${n} };`,
      )
      await Promise.all(texts.map((text) => policies.put(text, actor)))
      expect((await policies.history('same')).map((v) => v.version)).toEqual([1, 2, 3, 4])
      expect(await policies.setVersion()).toBe(10)
    })

    it('is one store for every connection: a write through one is seen by another', async () => {
      const { policies, second } = await fresh()
      const other = second()
      expect(await other.setVersion()).toBe(0)
      await policies.put('@id("p") permit(principal, action, resource);', actor)
      expect(await other.setVersion()).toBe(1)
      expect((await other.list()).map((p) => p.id)).toEqual(['p'])
      await other.remove('p', actor)
      expect(await policies.list()).toEqual([])
      expect(await policies.setVersion()).toBe(2)
    })
  })
}
