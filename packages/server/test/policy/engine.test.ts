import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { createPolicyEngine } from '../../src/policy/engine.js'
import type { AuthorizationRequest } from '../../src/policy/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 5 §1, §3, §4, §5: the policy decision point on real storage — decisions that name the
// policies that made them, forbid over permit, fail closed, needs-approval, the agent and the
// groups in the entity slice, the audit event, and "what may agent X do for person Y".

const ADMIN: Actor = { type: 'system', id: 'test' }
const SHOP = 'https://shop.example/mcp'
const GIT = 'https://git.example/mcp'
const NOW = '2025-06-01T14:30:00Z'
const BUY = `${SHOP}#buyMcpShopItem`
const INFO = `${SHOP}#getUserInfo`
const DELETE_REPO = `${GIT}#deleteRepo`
const TOOL = (resource: string, tool: string) => ({
  type: 'Deputy::Tool',
  id: `${resource}#${tool}`,
})

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`policy decision point (${dialect.name})`, () => {
    let deputy: TestDeputy
    let alice: string
    let bob: string
    let carol: string
    let claude: string
    let stranger: string
    const cimd = 'https://agent.example/client.json'

    const clock = {
      at: new Date(NOW),
      now() {
        return this.at
      },
      set(iso: string) {
        this.at = new Date(iso)
      },
    }

    beforeAll(async () => {
      deputy = await startTestDeputy({
        database: await dialect.create(),
        config: { policyRefreshIntervalMs: 60_000 },
        clock,
      })
      const { users, clients, policies } = deputy.deps
      alice = (
        await users.create(
          {
            email: 'alice@example.com',
            name: 'Alice',
            roles: ['admin'],
            claims: { tier: 'gold', age: 42 },
          },
          ADMIN,
        )
      ).id
      bob = (await users.create({ email: 'bob@example.com', name: 'Bob' }, ADMIN)).id
      carol = (await users.create({ email: 'carol@example.com', name: 'Carol' }, ADMIN)).id
      await users.setStatus('carol@example.com', 'disabled', ADMIN)
      claude = (
        await clients.register(
          { name: 'Claude', redirectUris: ['https://claude.example/cb'], public: true },
          ADMIN,
        )
      ).client.clientId
      stranger = (
        await clients.register(
          { name: 'Stranger', redirectUris: ['https://stranger.example/cb'], public: true },
          ADMIN,
          { kind: 'dynamic' },
        )
      ).client.clientId
      // A Client ID Metadata Document client as Deputy stores it once fetched.
      const now = clock.now().getTime()
      await deputy.deps.db
        .insertInto('clients')
        .values({
          client_id: cimd,
          kind: 'metadata_document',
          name: 'Docs Agent',
          status: 'active',
          secret_hash: null,
          redirect_uris: JSON.stringify(['https://agent.example/cb']),
          grant_types: JSON.stringify(['authorization_code']),
          token_endpoint_auth_method: 'none',
          jwks: null,
          jwks_uri: null,
          allowed_scopes: null,
          application_type: 'web',
          client_uri: null,
          logo_uri: null,
          metadata: '{}',
          expires_at: now + 3_600_000,
          created_at: now,
          updated_at: now,
        })
        .execute()
      await policies.declareActions(
        [
          {
            name: 'buyMcpShopItem',
            resource: SHOP,
            arguments: {
              type: 'object',
              properties: { item: { type: 'string' }, quantity: { type: 'integer' } },
              required: ['item'],
            },
            state: { type: 'object', properties: { demoMode: { type: 'string' } } },
          },
          {
            name: 'getUserInfo',
            resource: SHOP,
            arguments: { type: 'object', properties: { verbose: { type: 'boolean' } } },
          },
          { name: 'deleteRepo', resource: GIT },
        ],
        ADMIN,
      )
    })
    afterAll(() => deputy?.dispose())

    /** Replaces every stored policy with `text` and makes the engine load it now. */
    async function usePolicies(text: string): Promise<void> {
      for (const policy of await deputy.deps.policies.list())
        await deputy.deps.policies.remove(policy.id, ADMIN)
      if (text.trim() !== '') await deputy.deps.policies.put(text, ADMIN)
      await deputy.deps.policy.refresh()
      expect(deputy.deps.policy.loadedVersion()).toBe(await deputy.deps.policies.setVersion())
    }

    function buy(overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest {
      return {
        sub: alice,
        clientId: claude,
        action: BUY,
        resource: TOOL(SHOP, 'buyMcpShopItem'),
        scopes: ['shop'],
        arguments: { item: 'mug', quantity: 1 },
        ...overrides,
      }
    }

    beforeEach(() => usePolicies(''))

    describe('explanations name the deciding policy (§3)', () => {
      it('an allow names the permit, its description, the person, the tool and the agent', async () => {
        await usePolicies(`
          @id("shop.order")
          @description("Signed-in people may order")
          permit(principal, action == Deputy::Action::"${BUY}", resource);
        `)
        const decision = await deputy.deps.policy.explain(buy())
        expect(decision).toMatchObject({
          decision: 'allow',
          policies: ['shop.order'],
          errors: [],
          setVersion: await deputy.deps.policies.setVersion(),
        })
        expect(decision.explanation).toBe(
          `Allowed: policy "shop.order" (Signed-in people may order) permits alice@example.com to call buyMcpShopItem on ${SHOP} through agent "Claude".`,
        )
      })

      it('a deny by a forbid with @message carries the message for the caller', async () => {
        await usePolicies(`
          @id("shop.order") permit(principal, action == Deputy::Action::"${BUY}", resource);
          @id("shop.banned")
          @message("ABSOLUTELY NOT. GO AWAY 👋")
          forbid(principal, action, resource) when { principal.email == "alice@example.com" };
        `)
        const decision = await deputy.deps.policy.explain(buy())
        expect(decision).toMatchObject({
          decision: 'deny',
          policies: ['shop.banned'],
          message: 'ABSOLUTELY NOT. GO AWAY 👋',
        })
        expect(decision.explanation).toBe(
          'Denied: policy "shop.banned" forbids it — "ABSOLUTELY NOT. GO AWAY 👋".',
        )
        // Forbid overrides permit only where it applies: Bob is still permitted.
        const forBob = await deputy.deps.policy.explain(buy({ sub: bob }))
        expect(forBob).toMatchObject({ decision: 'allow', policies: ['shop.order'] })
        expect(forBob.message).toBeUndefined()
      })

      it('a forbid without @message is phrased with who and what', async () => {
        await usePolicies(`
          @id("shop.order") permit(principal, action, resource);
          @id("git.nobody") forbid(principal, action == Deputy::Action::"${DELETE_REPO}", resource);
        `)
        const decision = await deputy.deps.policy.explain({
          sub: alice,
          clientId: claude,
          action: DELETE_REPO,
          resource: TOOL(GIT, 'deleteRepo'),
        })
        expect(decision).toMatchObject({ decision: 'deny', policies: ['git.nobody'] })
        expect(decision.message).toBeUndefined()
        expect(decision.explanation).toBe(
          `Denied: policy "git.nobody" forbids alice@example.com to call deleteRepo on ${GIT} through agent "Claude".`,
        )
      })

      it('a default deny says that no policy permits it', async () => {
        await usePolicies(
          `@id("shop.order") permit(principal, action == Deputy::Action::"${BUY}", resource);`,
        )
        const decision = await deputy.deps.policy.explain({
          sub: alice,
          action: INFO,
          resource: TOOL(SHOP, 'getUserInfo'),
        })
        expect(decision).toMatchObject({ decision: 'deny', policies: [], errors: [] })
        expect(decision.explanation).toBe(
          `Denied: no policy permits alice@example.com to call getUserInfo on ${SHOP} (Cedar denies what no policy permits).`,
        )
      })

      it('a permit naming several policies names them all', async () => {
        await usePolicies(`
          @id("a.one") permit(principal, action == Deputy::Action::"${INFO}", resource);
          @id("a.two") permit(principal in Deputy::Role::"admin", action, resource);
        `)
        const decision = await deputy.deps.policy.explain({
          sub: alice,
          clientId: claude,
          action: INFO,
          resource: TOOL(SHOP, 'getUserInfo'),
        })
        expect(decision.policies).toEqual(['a.one', 'a.two'])
        expect(decision.explanation).toBe(
          `Allowed: policies "a.one" and "a.two" permit alice@example.com to call getUserInfo on ${SHOP} through agent "Claude".`,
        )
      })
    })

    describe('fail closed', () => {
      it('a forbid that fails to evaluate turns an allow into a deny (policy_error)', async () => {
        await usePolicies(`
          @id("shop.order") permit(principal, action, resource);
          @id("shop.overflow")
          forbid(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.arguments has quantity && context.arguments.quantity * 4611686018427387904 > 10 };
        `)
        const decision = await deputy.deps.policy.explain(
          buy({ arguments: { item: 'mug', quantity: 4 } }),
        )
        expect(decision.decision).toBe('deny')
        expect(decision.policies).toEqual(['shop.overflow'])
        expect(decision.errors).toEqual([
          { policyId: 'shop.overflow', message: expect.stringMatching(/overflow/) },
        ])
        expect(decision.explanation).toMatch(
          /^Denied: policy "shop\.overflow" could not be evaluated \(.*overflow.*\), and a forbid that cannot be evaluated denies\.$/,
        )
        // Where the forbid evaluates without error it simply does not apply.
        const small = await deputy.deps.policy.explain(
          buy({ arguments: { item: 'mug', quantity: 0 } }),
        )
        expect(small).toMatchObject({ decision: 'allow', policies: ['shop.order'], errors: [] })
      })

      it('a permit that fails to evaluate does not deny what another permit allows', async () => {
        await usePolicies(`
          @id("shop.order") permit(principal, action, resource);
          @id("shop.overflow-permit")
          permit(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.arguments has quantity && context.arguments.quantity * 4611686018427387904 > 10 };
        `)
        const decision = await deputy.deps.policy.explain(
          buy({ arguments: { item: 'mug', quantity: 4 } }),
        )
        expect(decision).toMatchObject({ decision: 'allow', policies: ['shop.order'] })
        expect(decision.errors.map((e) => e.policyId)).toEqual(['shop.overflow-permit'])
      })

      it('a request Cedar cannot evaluate (a required argument missing) is a deny', async () => {
        await usePolicies('@id("shop.order") permit(principal, action, resource);')
        const decision = await deputy.deps.policy.explain(buy({ arguments: { quantity: 1 } }))
        expect(decision.decision).toBe('deny')
        expect(decision.explanation).toMatch(
          /^Denied: the request for alice@example\.com to call buyMcpShopItem on https:\/\/shop\.example\/mcp through agent "Claude" does not fit the policy schema \(.*`item`.*\)\.$/,
        )
      })

      it('an unknown or disabled person, an unknown agent and an undeclared action are denied', async () => {
        await usePolicies('@id("all") permit(principal, action, resource);')
        const cases: [Partial<AuthorizationRequest>, string][] = [
          [{ sub: 'no-such-user' }, 'Denied: there is no person "no-such-user".'],
          [{ sub: carol }, 'Denied: carol@example.com is disabled.'],
          [{ clientId: 'client_nope' }, 'Denied: there is no agent "client_nope".'],
          [
            { action: `${SHOP}#launchRocket`, resource: TOOL(SHOP, 'launchRocket') },
            `Denied: "${SHOP}#launchRocket" is not a declared action, so no policy can permit it.`,
          ],
        ]
        for (const [overrides, explanation] of cases) {
          const decision = await deputy.deps.policy.explain(buy(overrides))
          expect(decision).toMatchObject({ decision: 'deny', policies: [], explanation })
        }
        // The same requests with everything known are allowed.
        expect((await deputy.deps.policy.explain(buy())).decision).toBe('allow')
      })

      it('a stored policy that cannot be loaded keeps the version in force; with none loaded, deny', async () => {
        await usePolicies('@id("shop.order") permit(principal, action, resource);')
        const inForce = deputy.deps.policy.loadedVersion()
        // Written past the store's validation, as a bad row would be: the set version moves.
        await deputy.deps.db
          .insertInto('policy_versions')
          .values({
            policy_id: 'broken',
            version: 1,
            set_version: inForce + 1,
            text: 'permit(principal, action, resource',
            created_at: Date.now(),
            created_by: 'test:broken',
          })
          .execute()
        await deputy.deps.db
          .updateTable('policy_set')
          .set({ version: inForce + 1 })
          .where('id', '=', 1)
          .execute()
        await deputy.deps.policy.refresh()
        expect(deputy.deps.policy.loadedVersion()).toBe(inForce)
        expect(await deputy.deps.policy.explain(buy())).toMatchObject({
          decision: 'allow',
          setVersion: inForce,
        })
        // A process that never loaded a version (one starting now) has nothing to decide with:
        // it denies, and says why.
        const fresh = createPolicyEngine({ ...deputy.deps, refreshIntervalMs: 60_000 })
        try {
          const decision = await fresh.explain(buy())
          expect(decision).toMatchObject({ decision: 'deny', policies: [], setVersion: -1 })
          expect(decision.explanation).toMatch(
            /^Denied: no policy set could be loaded \(.+\), and decisions fail closed\.$/,
          )
          expect(fresh.loadedVersion()).toBe(-1)
        } finally {
          fresh.close()
        }
        await deputy.deps.db
          .deleteFrom('policy_versions')
          .where('policy_id', '=', 'broken')
          .execute()
        await deputy.deps.db
          .updateTable('policy_set')
          .set({ version: inForce + 2 })
          .where('id', '=', 1)
          .execute()
        await deputy.deps.policy.refresh()
        expect(deputy.deps.policy.loadedVersion()).toBe(inForce + 2)
      })
    })

    describe('needs-approval (§4)', () => {
      const BIG_ORDER = `
        @id("shop.order") permit(principal, action == Deputy::Action::"${BUY}", resource);
        @id("shop.big-order")
        @description("Ten or more items need the person's approval")
        @message("Orders of ten or more need your approval")
        forbid(principal, action == Deputy::Action::"${BUY}", resource)
        when { context.arguments has quantity && context.arguments.quantity >= 10 }
        unless { context.approved };
      `

      it('a forbid … unless { context.approved } yields needs_approval, then allow once approved', async () => {
        await usePolicies(BIG_ORDER)
        const big = buy({ arguments: { item: 'mug', quantity: 12 } })
        const pending = await deputy.deps.policy.explain(big)
        expect(pending).toMatchObject({
          decision: 'needs_approval',
          policies: ['shop.big-order'],
          message: 'Orders of ten or more need your approval',
        })
        expect(pending.explanation).toBe(
          'Needs alice@example.com\'s approval: policy "shop.big-order" (Ten or more items need the person\'s approval) forbids it unless approved.',
        )
        expect(await deputy.deps.policy.explain({ ...big, approved: true })).toMatchObject({
          decision: 'allow',
          policies: ['shop.order'],
        })
        expect((await deputy.deps.policy.explain(buy())).decision).toBe('allow')
      })

      it('an argument that does not fit its declared type is refused, never left out for a has-guarded forbid to miss (issue 9 §4)', async () => {
        await usePolicies(BIG_ORDER)
        // 12.5 is not a Long and "12" is not one either; left out, `has quantity` would be false
        // and the order would go through while the handler ordered twelve and a half.
        for (const quantity of [12.5, '12', [12], { n: 12 }, true, null]) {
          const decision = await deputy.deps.policy.explain(
            buy({ arguments: { item: 'mug', quantity } }),
          )
          expect(decision.decision, JSON.stringify(quantity)).toBe('deny')
          expect(decision.explanation).toMatch(
            /^Denied: the request for alice@example\.com to call buyMcpShopItem on https:\/\/shop\.example\/mcp .*does not fit the policy schema \(argument `quantity` must be /,
          )
        }
        // A property the declaration does not name is not read by any policy: it is ignored.
        expect(
          (await deputy.deps.policy.explain(buy({ arguments: { item: 'mug', colour: 5 } })))
            .decision,
        ).toBe('allow')
      })

      it('a forbid that approval cannot lift stays a deny', async () => {
        await usePolicies(`${BIG_ORDER}
          @id("shop.no-mugs") forbid(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.arguments has item && context.arguments.item == "mug" };
        `)
        const decision = await deputy.deps.policy.explain(
          buy({ arguments: { item: 'mug', quantity: 12 } }),
        )
        expect(decision.decision).toBe('deny')
        expect(decision.policies).toEqual(['shop.big-order', 'shop.no-mugs'])
      })
    })

    describe('the entity slice', () => {
      it('the agent: third-party agents are denied a tool by context.agent.firstParty', async () => {
        await usePolicies(`
          @id("git.delete") permit(principal, action == Deputy::Action::"${DELETE_REPO}", resource);
          @id("git.first-party-only")
          @message("Only Deputy-registered agents may delete repositories")
          forbid(principal, action == Deputy::Action::"${DELETE_REPO}", resource)
          when { context has agent && !context.agent.firstParty };
        `)
        const request = (clientId?: string): AuthorizationRequest => ({
          sub: alice,
          ...(clientId === undefined ? {} : { clientId }),
          action: DELETE_REPO,
          resource: TOOL(GIT, 'deleteRepo'),
        })
        expect((await deputy.deps.policy.explain(request(claude))).decision).toBe('allow')
        expect(await deputy.deps.policy.explain(request(stranger))).toMatchObject({
          decision: 'deny',
          policies: ['git.first-party-only'],
          message: 'Only Deputy-registered agents may delete repositories',
        })
        expect((await deputy.deps.policy.explain(request(cimd))).decision).toBe('deny')
        // The person acting themself has no agent in the context.
        expect((await deputy.deps.policy.explain(request())).decision).toBe('allow')
      })

      it('the agent: a metadata-document client has its verified domain', async () => {
        await usePolicies(`
          @id("git.trusted-domain")
          permit(principal, action == Deputy::Action::"${DELETE_REPO}", resource)
          when { context has agent && context.agent has verifiedDomain && context.agent.verifiedDomain == "agent.example" };
        `)
        const request = (clientId: string): AuthorizationRequest => ({
          sub: alice,
          clientId,
          action: DELETE_REPO,
          resource: TOOL(GIT, 'deleteRepo'),
        })
        expect(await deputy.deps.policy.explain(request(cimd))).toMatchObject({
          decision: 'allow',
          policies: ['git.trusted-domain'],
        })
        expect((await deputy.deps.policy.explain(request(cimd))).explanation).toContain(
          'through agent "Docs Agent"',
        )
        expect((await deputy.deps.policy.explain(request(claude))).decision).toBe('deny')
      })

      it('groups: membership through tuples (nested) makes principal in Deputy::Group::"eng" hold', async () => {
        await usePolicies(`
          @id("git.engineers")
          permit(principal in Deputy::Group::"eng", action == Deputy::Action::"${DELETE_REPO}", resource);
        `)
        const { relationships } = deputy.deps
        const tuples = [
          {
            object: { type: 'group', id: 'eng' },
            relation: 'member',
            subject: { type: 'group', id: 'platform', relation: 'member' },
          },
          {
            object: { type: 'group', id: 'platform' },
            relation: 'member',
            subject: { type: 'user', id: alice },
          },
        ]
        await relationships.write(tuples, ADMIN)
        const request = (sub: string): AuthorizationRequest => ({
          sub,
          clientId: claude,
          action: DELETE_REPO,
          resource: TOOL(GIT, 'deleteRepo'),
        })
        try {
          expect(await deputy.deps.policy.explain(request(alice))).toMatchObject({
            decision: 'allow',
            policies: ['git.engineers'],
          })
          expect((await deputy.deps.policy.explain(request(bob))).decision).toBe('deny')
          // Membership ends with its tuple, at once: tuples are read for every decision.
          await relationships.delete([tuples[1] as (typeof tuples)[number]], ADMIN)
          expect((await deputy.deps.policy.explain(request(alice))).decision).toBe('deny')
        } finally {
          await relationships.delete(tuples, ADMIN)
        }
      })

      it('roles and custom claims: principal in Role, string tags and JSON-text tags', async () => {
        await usePolicies(`
          @id("shop.admins") permit(principal in Deputy::Role::"admin", action == Deputy::Action::"${INFO}", resource);
          @id("shop.gold")
          permit(principal, action == Deputy::Action::"${BUY}", resource)
          when { principal.hasTag("tier") && principal.getTag("tier") == "gold" && principal.hasTag("age") && principal.getTag("age") == "42" };
        `)
        const info = (sub: string): AuthorizationRequest => ({
          sub,
          action: INFO,
          resource: TOOL(SHOP, 'getUserInfo'),
        })
        expect((await deputy.deps.policy.explain(info(alice))).policies).toEqual(['shop.admins'])
        expect((await deputy.deps.policy.explain(info(bob))).decision).toBe('deny')
        expect((await deputy.deps.policy.explain(buy())).policies).toEqual(['shop.gold'])
        expect((await deputy.deps.policy.explain(buy({ sub: bob }))).decision).toBe('deny')
      })

      it('context: scopes, state and arguments shaped to their declaration (misfits refused, undeclared keys left out)', async () => {
        await usePolicies(`
          @id("shop.order")
          permit(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.scopes.contains("shop") };
          @id("shop.demo-locked")
          @message("The shop is closed in this mode")
          forbid(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.state has demoMode && context.state.demoMode == "locked" };
          @id("shop.no-quantity")
          forbid(principal, action == Deputy::Action::"${BUY}", resource)
          unless { context.arguments has quantity };
        `)
        const call = {
          resource: SHOP,
          tool: 'buyMcpShopItem',
          sub: alice,
          clientId: claude,
          scopes: ['shop'],
          arguments: { item: 'mug', quantity: 2, extra: 'ignored' },
          state: { demoMode: 'open', other: 1 },
        }
        expect(await deputy.deps.policy.authorizeToolCall(call)).toMatchObject({
          decision: 'allow',
          policies: ['shop.order'],
        })
        expect((await deputy.deps.policy.authorizeToolCall({ ...call, scopes: [] })).decision).toBe(
          'deny',
        )
        expect(
          await deputy.deps.policy.authorizeToolCall({ ...call, state: { demoMode: 'locked' } }),
        ).toMatchObject({ decision: 'deny', message: 'The shop is closed in this mode' })
        // A quantity that is not an integer does not fit `Long`: refused, never guessed or left out.
        const fraction = await deputy.deps.policy.authorizeToolCall({
          ...call,
          arguments: { item: 'mug', quantity: 2.5 },
        })
        expect(fraction).toMatchObject({ decision: 'deny', policies: [] })
        expect(fraction.explanation).toContain('argument `quantity` must be a whole number')
        // Nor does state of the wrong type: the ban would be missed while a handler read it.
        const state = await deputy.deps.policy.authorizeToolCall({
          ...call,
          state: { demoMode: ['locked'] },
        })
        expect(state).toMatchObject({ decision: 'deny', policies: [] })
        expect(state.explanation).toContain('state `demoMode` must be a string')
      })

      it('context: now and hour (UTC) come from the clock', async () => {
        await usePolicies(`
          @id("shop.afternoon")
          permit(principal, action == Deputy::Action::"${INFO}", resource)
          when { context.hour == 14 && context.now > datetime("2025-06-01T14:00:00Z") };
        `)
        const request: AuthorizationRequest = {
          sub: alice,
          action: INFO,
          resource: TOOL(SHOP, 'getUserInfo'),
        }
        expect((await deputy.deps.policy.explain(request)).decision).toBe('allow')
        clock.set('2025-06-01T13:59:00Z')
        try {
          expect((await deputy.deps.policy.explain(request)).decision).toBe('deny')
        } finally {
          clock.set(NOW)
        }
      })
    })

    describe('audit (§5)', () => {
      it('authorize appends policy.decided naming the policies; explain appends nothing', async () => {
        await usePolicies(`
          @id("shop.order") permit(principal, action == Deputy::Action::"${BUY}", resource);
          @id("shop.banned") @message("Go away")
          forbid(principal, action, resource) when { principal.email == "bob@example.com" };
        `)
        const { db } = deputy.deps
        const count = async () =>
          Number(
            (
              await db
                .selectFrom('audit_events')
                .select((eb) => eb.fn.countAll().as('n'))
                .where('type', '=', 'policy.decided')
                .executeTakeFirstOrThrow()
            ).n,
          )
        const before = await count()
        await deputy.deps.policy.explain(buy())
        expect(await count()).toBe(before)

        const allowed = await deputy.deps.policy.authorize({ ...buy(), requestId: 'req-1' })
        const denied = await deputy.deps.policy.authorize(buy({ sub: bob }))
        expect(await count()).toBe(before + 2)
        const rows = await db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', 'policy.decided')
          .orderBy('seq', 'desc')
          .limit(2)
          .execute()
        const [last, first] = rows
        expect(first).toMatchObject({ decision: 'allow', reason: 'permitted', request_id: 'req-1' })
        expect(JSON.parse(String(first?.actor))).toEqual({
          type: 'agent',
          id: claude,
          label: 'Claude',
        })
        expect(JSON.parse(String(first?.on_behalf_of))).toEqual({
          type: 'user',
          id: alice,
          label: 'alice@example.com',
        })
        expect(JSON.parse(String(first?.target))).toEqual({
          type: 'Deputy::Tool',
          id: `${SHOP}#buyMcpShopItem`,
        })
        expect(JSON.parse(String(first?.data))).toEqual({
          policies: ['shop.order'],
          set_version: allowed.setVersion,
          action: BUY,
          resource: `${SHOP}#buyMcpShopItem`,
          explanation: allowed.explanation,
          errors: [],
        })
        expect(last).toMatchObject({ decision: 'deny', reason: 'forbidden' })
        expect(JSON.parse(String(last?.on_behalf_of))).toMatchObject({ id: bob })
        expect(JSON.parse(String(last?.data))).toMatchObject({
          policies: ['shop.banned'],
          explanation: denied.explanation,
        })
      })
    })

    describe('simulation: what may agent X do for person Y (§3)', () => {
      it('decides every declared tool with the consented scopes and stored state', async () => {
        await usePolicies(`
          @id("shop.info") permit(principal, action == Deputy::Action::"${INFO}", resource)
          when { context.scopes.contains("profile") };
          @id("shop.order") permit(principal, action == Deputy::Action::"${BUY}", resource);
          @id("shop.demo-locked") forbid(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.state has demoMode && context.state.demoMode == "locked" };
          @id("git.delete") permit(principal, action == Deputy::Action::"${DELETE_REPO}", resource);
          @id("git.approve") forbid(principal, action == Deputy::Action::"${DELETE_REPO}", resource)
          unless { context.approved };
        `)
        await deputy.deps.grants.rememberConsent(alice, claude, SHOP, ['profile', 'shop'])
        const rows = await deputy.deps.policy.simulate({ sub: alice, clientId: claude })
        const byAction = Object.fromEntries(
          rows.map((r) => [r.action.slice(r.action.lastIndexOf('#') + 1), r]),
        )
        expect(rows.map((r) => r.action).sort()).toEqual([BUY, DELETE_REPO, INFO].sort())
        expect(Object.keys(byAction).sort()).toEqual([
          'buyMcpShopItem',
          'deleteRepo',
          'getUserInfo',
        ])
        expect(byAction.getUserInfo).toMatchObject({
          resource: SHOP,
          decision: 'allow',
          policies: ['shop.info'],
        })
        expect(byAction.buyMcpShopItem).toMatchObject({
          decision: 'allow',
          policies: ['shop.order'],
        })
        expect(byAction.deleteRepo).toMatchObject({
          resource: GIT,
          decision: 'needs_approval',
          policies: ['git.approve'],
          explanation:
            'Needs alice@example.com\'s approval: policy "git.approve" forbids it unless approved.',
        })
        // Without consent to `profile` (another agent), getUserInfo is not permitted.
        const viaStranger = await deputy.deps.policy.simulate({ sub: alice, clientId: stranger })
        expect(viaStranger.find((r) => r.action === INFO)).toMatchObject({
          decision: 'deny',
          explanation: `Denied: no policy permits alice@example.com to call getUserInfo on ${SHOP} through agent "Stranger" (Cedar denies what no policy permits).`,
        })
        // The person's stored state counts: the shop in "locked" mode forbids ordering.
        await deputy.deps.db
          .insertInto('mcp_user_state')
          .values({
            resource: SHOP,
            sub: alice,
            key: 'demoMode',
            value: JSON.stringify('locked'),
            version: 1,
            updated_at: Date.now(),
          })
          .execute()
        try {
          const locked = await deputy.deps.policy.simulate({ sub: alice, clientId: claude })
          expect(locked.find((r) => r.action === BUY)).toMatchObject({
            decision: 'deny',
            policies: ['shop.demo-locked'],
          })
        } finally {
          await deputy.deps.db.deleteFrom('mcp_user_state').where('sub', '=', alice).execute()
        }
      })

      it('reports depends_on_arguments when a policy that may apply reads the arguments', async () => {
        await usePolicies(`
          @id("shop.order") permit(principal, action == Deputy::Action::"${BUY}", resource);
          @id("shop.big-order") forbid(principal, action == Deputy::Action::"${BUY}", resource)
          when { context.arguments.item == "car" } unless { context.approved };
          @id("shop.bob-big") forbid(principal, action == Deputy::Action::"${INFO}", resource)
          when { principal.email == "bob@example.com" && context.arguments has verbose };
          @id("shop.info") permit(principal, action == Deputy::Action::"${INFO}", resource);
        `)
        const rows = await deputy.deps.policy.simulate({ sub: alice, clientId: claude })
        const byAction = Object.fromEntries(
          rows.map((r) => [r.action.slice(r.action.lastIndexOf('#') + 1), r]),
        )
        expect(byAction.buyMcpShopItem).toMatchObject({
          decision: 'depends_on_arguments',
          policies: ['shop.big-order'],
        })
        expect(byAction.buyMcpShopItem?.explanation).toBe(
          `Depends on the arguments: policy "shop.big-order" decides from them whether alice@example.com may call buyMcpShopItem on ${SHOP} through agent "Claude".`,
        )
        // A policy reading arguments that cannot apply to Alice does not make it depend on them.
        expect(byAction.getUserInfo).toMatchObject({ decision: 'allow', policies: ['shop.info'] })
        expect(byAction.deleteRepo).toMatchObject({ decision: 'deny', policies: [] })
      })

      it('an unknown person gets a deny for every tool', async () => {
        const rows = await deputy.deps.policy.simulate({ sub: 'nobody', clientId: claude })
        expect(rows.length).toBe(3)
        for (const row of rows) {
          expect(row).toMatchObject({
            decision: 'deny',
            explanation: 'Denied: there is no person "nobody".',
          })
        }
      })
    })
  })
}
