import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 9 §9: a Cedar action is a tool *of a server*. Two MCP servers that both have a
// `deleteFile` tool have two actions, `<resource>#deleteFile` each, with their own arguments and
// their own policies; the engine checks that a call's resource is the action's own.

const ADMIN: Actor = { type: 'system', id: 'test' }
const A = 'https://files-a.example/mcp'
const B = 'https://files-b.example/mcp'
const action = (resource: string, tool: string) => `${resource}#${tool}`
const tool = (resource: string, name: string) => ({
  type: 'Deputy::Tool',
  id: `${resource}#${name}`,
})

const A_ARGUMENTS = {
  type: 'object',
  properties: { path: { type: 'string' } },
  required: ['path'],
}
const B_ARGUMENTS = {
  type: 'object',
  properties: { path: { type: 'string' }, force: { type: 'boolean' } },
  required: ['path', 'force'],
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `a tool is an action of its server (issue 9 §9, ${dialect.name})`,
    () => {
      let deputy: TestDeputy
      let alice: string

      beforeAll(async () => {
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { policyRefreshIntervalMs: 60_000 },
        })
        alice = (
          await deputy.deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        ).id
        // Server A declares first, server B later: B must not take A's deleteFile over.
        await deputy.deps.policies.declareActions(
          [{ name: 'deleteFile', resource: A, arguments: A_ARGUMENTS }],
          ADMIN,
        )
        await deputy.deps.policies.declareActions(
          [{ name: 'deleteFile', resource: B, arguments: B_ARGUMENTS }],
          ADMIN,
        )
      })
      afterAll(() => deputy?.dispose())

      async function usePolicies(text: string): Promise<void> {
        for (const policy of await deputy.deps.policies.list())
          await deputy.deps.policies.remove(policy.id, ADMIN)
        if (text.trim() !== '') await deputy.deps.policies.put(text, ADMIN)
        await deputy.deps.policy.refresh()
      }

      beforeEach(() => usePolicies(''))

      const call = (resource: string, args: Record<string, unknown>) =>
        deputy.deps.policy.authorizeToolCall({
          resource,
          tool: 'deleteFile',
          sub: alice,
          clientId: undefined,
          scopes: [],
          arguments: args,
          state: {},
        })

      it('declaring the same tool name on two servers keeps both, each with its own arguments: the later declaration does not take over the earlier one', async () => {
        const declared = (await deputy.deps.policies.actions()).filter(
          (a) => a.name === 'deleteFile',
        )
        expect(
          declared.map((a) => ({ id: a.id, resource: a.resource, arguments: a.arguments })),
        ).toEqual([
          { id: action(A, 'deleteFile'), resource: A, arguments: A_ARGUMENTS },
          { id: action(B, 'deleteFile'), resource: B, arguments: B_ARGUMENTS },
        ])
        // Each action's context has its own server's arguments: `force` is B's alone.
        const problems = await deputy.deps.policies.validate(
          `@id("a.force") forbid(principal, action == Deputy::Action::"${action(A, 'deleteFile')}", resource) when { context.arguments.force };`,
        )
        expect(problems.ok).toBe(false)
        expect(
          (
            await deputy.deps.policies.validate(
              `@id("b.force") forbid(principal, action == Deputy::Action::"${action(B, 'deleteFile')}", resource) when { context.arguments.force };`,
            )
          ).ok,
        ).toBe(true)
        // Declaring A again (a restart of server A) changes nothing about B.
        await deputy.deps.policies.declareActions(
          [{ name: 'deleteFile', resource: A, arguments: A_ARGUMENTS }],
          ADMIN,
        )
        expect(
          (await deputy.deps.policies.actions()).filter((a) => a.name === 'deleteFile').length,
        ).toBe(2)
      })

      it("a policy written for server A's deleteFile never decides server B's deleteFile", async () => {
        await usePolicies(`
          @id("a.tmp-only")
          permit(principal, action == Deputy::Action::"${action(A, 'deleteFile')}", resource)
          when { context.arguments.path like "/tmp/*" };
          @id("b.all")
          permit(principal, action == Deputy::Action::"${action(B, 'deleteFile')}", resource);
          @id("b.no-force")
          @message("No forced deletes on B")
          forbid(principal, action == Deputy::Action::"${action(B, 'deleteFile')}", resource)
          when { context.arguments.force };
        `)
        expect(await call(A, { path: '/tmp/x' })).toMatchObject({
          decision: 'allow',
          policies: ['a.tmp-only'],
        })
        expect(await call(A, { path: '/etc/passwd' })).toMatchObject({
          decision: 'deny',
          policies: [],
        })
        // A's permit does not reach B, and B's forbid does not reach A.
        expect(await call(B, { path: '/etc/passwd', force: false })).toMatchObject({
          decision: 'allow',
          policies: ['b.all'],
        })
        expect(await call(B, { path: '/tmp/x', force: true })).toMatchObject({
          decision: 'deny',
          policies: ['b.no-force'],
          message: 'No forced deletes on B',
        })
        const decision = await call(B, { path: '/tmp/x', force: false })
        expect(decision.explanation).toBe(
          `Allowed: policy "b.all" permits alice@example.com to call deleteFile on ${B}.`,
        )
      })

      it("a call for server B's tool with server A's action is refused, and the refusal is audited", async () => {
        await usePolicies(`
          @id("a.all") permit(principal, action == Deputy::Action::"${action(A, 'deleteFile')}", resource);
        `)
        const mismatched = await deputy.deps.policy.authorize({
          sub: alice,
          action: action(A, 'deleteFile'),
          resource: tool(B, 'deleteFile'),
          arguments: { path: '/tmp/x' },
        })
        expect(mismatched).toMatchObject({ decision: 'deny', policies: [] })
        expect(mismatched.explanation).toBe(
          `Denied: action "${action(A, 'deleteFile')}" is the tool deleteFile of ${A}, not Deputy::Tool "${B}#deleteFile".`,
        )
        const [record] = await deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', 'policy.decided')
          .orderBy('seq', 'desc')
          .limit(1)
          .execute()
        expect(record).toMatchObject({ decision: 'deny', reason: 'wrong_resource' })
        // The same call for A's own tool is allowed.
        expect(
          await deputy.deps.policy.authorize({
            sub: alice,
            action: action(A, 'deleteFile'),
            resource: tool(A, 'deleteFile'),
            arguments: { path: '/tmp/x' },
          }),
        ).toMatchObject({ decision: 'allow', policies: ['a.all'] })
        // A server's action group is not a tool action: naming it for a call is refused too.
        expect(
          await deputy.deps.policy.explain({
            sub: alice,
            action: A,
            resource: tool(A, 'deleteFile'),
          }),
        ).toMatchObject({ decision: 'deny', policies: [] })
      })

      it('a server is an action group: `action in Deputy::Action::"<resource>"` covers every tool of that server and none of another', async () => {
        await deputy.deps.policies.declareActions([{ name: 'listFiles', resource: A }], ADMIN)
        await usePolicies(`
          @id("a.everything") permit(principal, action in Deputy::Action::"${A}", resource);
        `)
        expect(await call(A, { path: '/etc/passwd' })).toMatchObject({
          decision: 'allow',
          policies: ['a.everything'],
        })
        const list = await deputy.deps.policy.authorizeToolCall({
          resource: A,
          tool: 'listFiles',
          sub: alice,
          clientId: undefined,
          scopes: [],
          arguments: {},
          state: {},
        })
        expect(list).toMatchObject({ decision: 'allow', policies: ['a.everything'] })
        expect(await call(B, { path: '/tmp/x', force: false })).toMatchObject({
          decision: 'deny',
          policies: [],
        })
        // The simulation knows the groups too.
        const rows = await deputy.deps.policy.simulate({ sub: alice })
        expect(
          rows
            .filter((row) => row.resource === A || row.resource === B)
            .map((row) => [row.action, row.decision]),
        ).toEqual([
          [action(A, 'deleteFile'), 'allow'],
          [action(A, 'listFiles'), 'allow'],
          [action(B, 'deleteFile'), 'deny'],
        ])
      })

      it("`read` can be a tool's name: its action is `<resource>#read`, never Deputy's own read", async () => {
        await deputy.deps.policies.declareActions([{ name: 'read', resource: A }], ADMIN)
        await usePolicies(`
          @id("a.read") permit(principal, action == Deputy::Action::"${action(A, 'read')}", resource);
        `)
        const decision = await deputy.deps.policy.authorizeToolCall({
          resource: A,
          tool: 'read',
          sub: alice,
          clientId: undefined,
          scopes: [],
          arguments: {},
          state: {},
        })
        expect(decision).toMatchObject({ decision: 'allow', policies: ['a.read'] })
        // Deputy's own read (retrieval) is untouched: no policy permits it here.
        await deputy.deps.relationships.write(
          [
            {
              object: { type: 'doc', id: 'plan' },
              relation: 'viewer',
              subject: { type: 'user', id: alice },
            },
          ],
          ADMIN,
        )
        expect(
          await deputy.deps.policy.filterReadable({ sub: alice, type: 'doc', objects: ['plan'] }),
        ).toEqual([])
      })

      it('a policy naming a tool by its bare name, as before, is refused with the ids it may mean', async () => {
        const validation = await deputy.deps.policies.validate(
          '@id("old") forbid(principal, action == Deputy::Action::"deleteFile", resource);',
        )
        expect(validation).toMatchObject({
          ok: false,
          problems: [
            {
              message: 'unrecognized action `Deputy::Action::"deleteFile"`',
              help: `a tool's action is named by its server too: \`Deputy::Action::"${action(A, 'deleteFile')}"\` or \`Deputy::Action::"${action(B, 'deleteFile')}"\``,
            },
          ],
        })
      })

      it('a declaration without a resource, or with a resource that is not a URL or has a fragment, is refused', async () => {
        for (const resource of [null, '', 'files-a', 'https://files-a.example/mcp#frag']) {
          await expect(
            deputy.deps.policies.declareActions(
              [{ name: 'deleteFile', resource: resource as string }],
              ADMIN,
            ),
          ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
        }
        // Twice the same tool of the same server in one declaration is refused; on two servers it is not.
        await expect(
          deputy.deps.policies.declareActions(
            [
              { name: 'deleteFile', resource: A },
              { name: 'deleteFile', resource: A },
            ],
            ADMIN,
          ),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
      })
    },
  )
}
