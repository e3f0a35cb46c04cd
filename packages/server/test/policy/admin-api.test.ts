import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { tailAudit } from '../../src/audit/query.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser, hiddenField } from '../helpers/sign-in.js'
import {
  APPROVAL_POLICY,
  BAD_POLICIES,
  RETRIEVAL_POLICY,
  SHOP,
  SHOP_POLICIES,
  SYSTEM,
  seedShop,
} from './shop-fixture.js'

interface WireDecision {
  decision: string
  policies: string[]
  explanation: string
  message?: string
  errors: unknown[]
  set_version: number
}

// Issue 5 §3: the admin HTTP API over policies, decisions and relationship tuples, on every
// database Deputy runs on.
describe.each(DIALECTS)('policy admin API on $name (issue 5 §3)', ({ name, create }) => {
  let deputy: TestDeputy
  let key: string
  let aliceId: string
  let agentId: string

  beforeAll(async () => {
    if (skipDialect(name)) return
    deputy = await startTestDeputy({ database: await create() })
    key = (await createAdminApiKeys(deputy.deps).create('ci', SYSTEM)).key
    ;({ aliceId, agentId } = await seedShop(deputy))
  })
  afterAll(() => deputy?.dispose())

  function call(method: string, path: string, body?: unknown, auth = `Bearer ${key}`) {
    return deputy.app.request(`/admin/api${path}`, {
      method,
      headers: {
        authorization: auth,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  }

  async function json<T>(res: Response, status = 200): Promise<T> {
    const body = await res.json()
    expect(res.status, JSON.stringify(body)).toBe(status)
    return body as T
  }

  it.skipIf(skipDialect(name))('refuses every route without an admin API key', async () => {
    const routes: [string, string][] = [
      ['GET', '/policies'],
      ['POST', '/policies'],
      ['POST', '/policies/validate'],
      ['GET', '/policies/x'],
      ['DELETE', '/policies/x'],
      ['GET', '/policies/x/versions'],
      ['GET', '/policy/schema'],
      ['GET', '/policy/actions'],
      ['POST', '/policy/actions'],
      ['POST', '/policy/explain'],
      ['POST', '/policy/authorize'],
      ['POST', '/policy/simulate'],
      ['POST', '/policy/filter-readable'],
      ['GET', '/relations'],
      ['POST', '/relations'],
      ['POST', '/relations/delete'],
      ['POST', '/relations/check'],
      ['POST', '/relations/list-objects'],
      ['POST', '/relations/filter'],
    ]
    for (const [method, path] of routes) {
      const body = method === 'POST' ? { text: 'permit (principal, action, resource);' } : undefined
      const wrong = await call(method, path, body, 'Bearer dpk_wrong')
      expect(wrong.status, `${method} ${path}`).toBe(401)
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="deputy-admin"')
      const none = await deputy.app.request(`/admin/api${path}`, { method })
      expect(none.status, `${method} ${path} without credentials`).toBe(401)
    }
    expect(await deputy.deps.policies.list()).toEqual([])
  })

  it.skipIf(skipDialect(name))(
    'answers 403 to a signed-in person without deputy:admin, and to a session change without X-CSRF-Token',
    async () => {
      await deputy.deps.users.create(
        { email: 'mia@example.com', name: 'Mia', password: 'mia-password-1' },
        SYSTEM,
      )
      await deputy.deps.users.create(
        { email: 'root@example.com', name: 'Root', roles: ['admin'], password: 'root-password-1' },
        SYSTEM,
      )
      const signIn = async (email: string, password: string) => {
        const client = browser(deputy)
        expect((await client.signIn(email, password)).status).toBe(303)
        const csrf = hiddenField(await (await client.get('/account')).text(), 'csrf_token')
        return { client, csrf }
      }
      const post = (client: ReturnType<typeof browser>, headers: Record<string, string>) =>
        client.request('/admin/api/policies', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ text: SHOP_POLICIES }),
        })

      const mia = await signIn('mia@example.com', 'mia-password-1')
      const refused = await mia.client.get('/admin/api/policies')
      expect(refused.status).toBe(403)
      expect(await refused.json()).toMatchObject({
        error: 'ERR_FORBIDDEN',
        message: 'mia@example.com does not have the deputy:admin permission',
      })
      expect((await post(mia.client, { 'x-csrf-token': mia.csrf })).status).toBe(403)

      const root = await signIn('root@example.com', 'root-password-1')
      const forged = await post(root.client, {})
      expect(forged.status).toBe(403)
      expect(((await forged.json()) as { message: string }).message).toBe(
        'a change made with a signed-in session must send the X-CSRF-Token header',
      )
      expect(await deputy.deps.policies.list()).toEqual([])
      expect((await root.client.get('/admin/api/policies')).status).toBe(200)
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses an invalid policy with 400, every problem with its line and column, and stores nothing',
    async () => {
      const before = await deputy.deps.policies.setVersion()
      const res = await call('POST', '/policies', { text: BAD_POLICIES })
      const body = await json<{
        error: string
        message: string
        problems: Record<string, unknown>[]
      }>(res, 400)
      expect(body.error).toBe('ERR_POLICY_INVALID')
      expect(body.message).toMatch(/line 7, column 8/)
      expect(body.problems).toHaveLength(1)
      expect(body.problems[0]).toMatchObject({ policy_id: 'bad', line: 7, column: 8 })
      expect(body.problems[0]?.message).toMatch(/stat/)
      expect(body.problems[0]).not.toHaveProperty('policyId')
      // Nothing half-written: not even the valid statement beside it.
      expect(await deputy.deps.policies.list()).toEqual([])
      expect(await deputy.deps.policies.history('ok')).toEqual([])
      expect(await deputy.deps.policies.setVersion()).toBe(before)

      const validated = await json<{ valid: boolean; problems: unknown[] }>(
        await call('POST', '/policies/validate', { text: BAD_POLICIES }),
      )
      expect(validated).toMatchObject({
        valid: false,
        problems: [{ policy_id: 'bad', line: 7, column: 8 }],
      })
      const syntax = await json<{ problems: { line: number; column: number }[] }>(
        await call('POST', '/policies', { text: 'permit (principal, action, resource)\nforbid' }),
        400,
      )
      expect(syntax.problems[0]?.line).toBeGreaterThanOrEqual(1)
      expect(await deputy.deps.policies.list()).toEqual([])
    },
  )

  it.skipIf(skipDialect(name))('refuses a body with an unknown field in one line', async () => {
    const res = await call('POST', '/policies', { text: SHOP_POLICIES, txt: 'x' })
    const body = await json<{ error: string; message: string }>(res, 400)
    expect(body).toMatchObject({ error: 'ERR_INVALID_INPUT', message: 'txt is not a known field' })
    const missing = await json<{ message: string }>(await call('POST', '/policies', {}), 400)
    expect(missing.message).toBe('text is required')
    expect(await deputy.deps.policies.list()).toEqual([])
  })

  it.skipIf(skipDialect(name))(
    'round trip: add, list, get, change (version 2), history, remove, each audited with the key',
    async () => {
      const valid = await json<{ valid: boolean; policies: { id: string }[] }>(
        await call('POST', '/policies/validate', { text: SHOP_POLICIES }),
      )
      expect(valid.valid).toBe(true)
      expect(valid.policies.map((p) => p.id)).toEqual([
        'shop.tools',
        'shop.banned-order',
        'shop.admin-user-info',
      ])
      expect(await deputy.deps.policies.list()).toEqual([])

      const created = await json<{ policies: Record<string, unknown>[] }>(
        await call('POST', '/policies', { text: SHOP_POLICIES }),
        201,
      )
      expect(created.policies.map((p) => [p.id, p.version, p.effect])).toEqual([
        ['shop.tools', 1, 'permit'],
        ['shop.banned-order', 1, 'forbid'],
        ['shop.admin-user-info', 1, 'forbid'],
      ])
      expect(created.policies[1]).toMatchObject({
        description: 'A banned person does not get a shirt.',
        message: 'ABSOLUTELY NOT. GO AWAY 👋',
        actions: [`${SHOP}#buyMcpShopItem`],
      })
      expect(created.policies[0]).toHaveProperty('set_version')
      expect(created.policies[0]).toHaveProperty('created_at')

      const listed = await json<{ policies: { id: string }[]; set_version: number }>(
        await call('GET', '/policies'),
      )
      expect(listed.policies.map((p) => p.id).sort()).toEqual(
        ['shop.admin-user-info', 'shop.banned-order', 'shop.tools'].sort(),
      )
      const one = await json<{ id: string; text: string }>(
        await call('GET', '/policies/shop.banned-order'),
      )
      expect(one.text).toContain('forbid')

      // A single statement without @id takes the id given beside it.
      const changed = await json<{ policies: { id: string; version: number }[] }>(
        await call('POST', '/policies', {
          id: 'shop.banned-order',
          text: `forbid (principal, action == Deputy::Action::"${SHOP}#buyMcpShopItem", resource)\nwhen { context.state has demoMode && context.state.demoMode == "banned" };`,
        }),
        201,
      )
      expect(changed.policies).toMatchObject([{ id: 'shop.banned-order', version: 2 }])

      expect((await call('DELETE', '/policies/shop.banned-order')).status).toBe(204)
      const gone = await json<{ error: string }>(
        await call('GET', '/policies/shop.banned-order'),
        404,
      )
      expect(gone.error).toBe('ERR_NOT_FOUND')
      expect((await call('DELETE', '/policies/shop.banned-order')).status).toBe(404)
      const versions = await json<{ versions: { version: number; text: string | null }[] }>(
        await call('GET', '/policies/shop.banned-order/versions'),
      )
      expect(versions.versions.map((v) => [v.version, v.text === null])).toEqual([
        [1, false],
        [2, false],
        [3, true],
      ])
      expect((await call('GET', '/policies/never-was/versions')).status).toBe(404)

      const [written] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.written' })
      expect(written?.actor.id).toMatch(/^admin-key:/)
      const [removed] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.removed' })
      expect(removed?.target).toEqual({ type: 'policy', id: 'shop.banned-order' })

      // Back as it was, for the decisions below.
      await json(await call('POST', '/policies', { text: SHOP_POLICIES }), 201)
    },
  )

  it.skipIf(skipDialect(name))(
    'describes the schema in force and the declared actions',
    async () => {
      const schema = await json<{ schema: Record<string, unknown>; text: string }>(
        await call('GET', '/policy/schema'),
      )
      expect(schema.schema).toHaveProperty('Deputy')
      expect(schema.text).toMatch(/namespace Deputy/)
      expect(schema.text).toContain(`action "${SHOP}#buyMcpShopItem" in [Action::"${SHOP}"]`)
      const actions = await json<{
        actions: { id: string; name: string; resource: string | null }[]
      }>(await call('GET', '/policy/actions'))
      expect(actions.actions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            id: `${SHOP}#buyMcpShopItem`,
            name: 'buyMcpShopItem',
            resource: SHOP,
          }),
          expect.objectContaining({
            id: `${SHOP}#getUserInfo`,
            name: 'getUserInfo',
            resource: SHOP,
          }),
          expect.objectContaining({ id: 'read', name: 'read', resource: null }),
        ]),
      )
    },
  )

  it.skipIf(skipDialect(name))(
    'explain names the deciding policy and its message, and writes no audit event',
    async () => {
      const before = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.decided' })
      const banned = await json<WireDecision>(
        await call('POST', '/policy/explain', {
          person: 'alice@example.com',
          client_id: agentId,
          action: 'buyMcpShopItem',
          arguments: { item: 'tshirt' },
          state: { demoMode: 'banned' },
          scopes: ['shop:order'],
        }),
      )
      expect(banned).toMatchObject({
        decision: 'deny',
        policies: ['shop.banned-order'],
        message: 'ABSOLUTELY NOT. GO AWAY 👋',
        errors: [],
      })
      expect(banned.explanation).toContain('shop.banned-order')

      const normal = await json<WireDecision>(
        await call('POST', '/policy/explain', {
          person: aliceId,
          client_id: agentId,
          action: 'buyMcpShopItem',
          resource: SHOP,
          arguments: { item: 'tshirt' },
          state: { demoMode: 'normal' },
        }),
      )
      expect(normal).toMatchObject({ decision: 'allow', policies: ['shop.tools'] })

      const bob = await json<WireDecision>(
        await call('POST', '/policy/explain', { person: 'bob@example.com', action: 'getUserInfo' }),
      )
      expect(bob).toMatchObject({
        decision: 'deny',
        policies: ['shop.admin-user-info'],
        message: "Sorry, bruh. You don't have these permissions.",
      })
      expect(await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.decided' })).toEqual(
        before,
      )
    },
  )

  it.skipIf(skipDialect(name))(
    'authorize decides and writes a policy.decided event naming the deciding policies',
    async () => {
      const decision = await json<WireDecision>(
        await call('POST', '/policy/authorize', {
          person: aliceId,
          client_id: agentId,
          action: 'buyMcpShopItem',
          arguments: { item: 'tshirt' },
          state: { demoMode: 'banned' },
        }),
      )
      expect(decision.decision).toBe('deny')
      const [event] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.decided' })
      expect(event).toMatchObject({
        decision: 'deny',
        data: {
          policies: ['shop.banned-order'],
          set_version: decision.set_version,
          action: `${SHOP}#buyMcpShopItem`,
          explanation: decision.explanation,
        },
      })
      expect(event?.actor).toMatchObject({ type: 'agent', id: agentId })
      expect(event?.onBehalfOf).toMatchObject({ type: 'user', id: aliceId })
      expect(event?.requestId).toEqual(expect.any(String))
    },
  )

  it.skipIf(skipDialect(name))(
    'a policy that asks for approval yields needs_approval, and allow once approved',
    async () => {
      await json(
        await call('POST', '/policies', {
          text: APPROVAL_POLICY,
        }),
        201,
      )
      const ask = (approved: boolean) =>
        call('POST', '/policy/explain', {
          person: aliceId,
          client_id: agentId,
          action: 'buyMcpShopItem',
          arguments: { item: 'tshirt', quantity: 10 },
          approved,
        })
      const pending = await json<WireDecision>(await ask(false))
      expect(pending).toMatchObject({
        decision: 'needs_approval',
        policies: ['shop.big-orders-need-approval'],
      })
      expect(pending.explanation).toContain('shop.big-orders-need-approval')
      expect(await json<WireDecision>(await ask(true))).toMatchObject({ decision: 'allow' })
    },
  )

  it.skipIf(skipDialect(name))('simulate: what may this agent do for this person', async () => {
    const simulate = async (person: string) =>
      json<{ actions: { action: string; decision: string; explanation: string }[] }>(
        await call('POST', '/policy/simulate', { person, client_id: agentId }),
      )
    const bob = await simulate('bob@example.com')
    const row = (rows: typeof bob, tool: string) =>
      rows.actions.find((r) => r.action === `${SHOP}#${tool}`)
    expect(row(bob, 'getUserInfo')).toMatchObject({ decision: 'deny' })
    expect(row(bob, 'getUserInfo')?.explanation).toContain('shop.admin-user-info')
    const alice = await simulate('alice@example.com')
    expect(row(alice, 'getUserInfo')).toMatchObject({ decision: 'allow' })
    expect(row(alice, 'buyMcpShopItem')).toBeDefined()
  })

  it.skipIf(skipDialect(name))(
    'relations: write, list, check through a group, list-objects, filter, delete',
    async () => {
      const written = await json<{ written: number }>(
        await call('POST', '/relations', {
          tuples: [
            'doc:readme#viewer@group:eng#member',
            `group:eng#member@user:${aliceId}`,
            {
              object: { type: 'doc', id: 'roadmap' },
              relation: 'viewer',
              subject: { type: 'user', id: aliceId },
            },
            'doc:salaries#viewer@user:someone-else',
          ],
        }),
      )
      expect(written.written).toBe(4)
      const [event] = await tailAudit(deputy.deps.store, {
        limit: 1,
        type: 'relationships.written',
      })
      expect(event?.actor.id).toMatch(/^admin-key:/)

      const listed = await json<{ tuples: unknown[] }>(
        await call('GET', '/relations?object=doc:readme'),
      )
      expect(listed.tuples).toEqual([
        {
          object: { type: 'doc', id: 'readme' },
          relation: 'viewer',
          subject: { type: 'group', id: 'eng', relation: 'member' },
        },
      ])
      const ofType = await json<{ tuples: unknown[] }>(await call('GET', '/relations?object=doc'))
      expect(ofType.tuples).toHaveLength(3)

      const check = async (object: string) =>
        (
          await json<{ allowed: boolean }>(
            await call('POST', '/relations/check', {
              object,
              relation: 'viewer',
              subject: `user:${aliceId}`,
            }),
          )
        ).allowed
      expect(await check('doc:readme')).toBe(true)
      expect(await check('doc:salaries')).toBe(false)

      const objects = await json<{ objects: string[] }>(
        await call('POST', '/relations/list-objects', {
          subject: `user:${aliceId}`,
          relation: 'viewer',
          type: 'doc',
        }),
      )
      expect(objects.objects.sort()).toEqual(['readme', 'roadmap'])
      const filtered = await json<{ objects: string[] }>(
        await call('POST', '/relations/filter', {
          subject: { type: 'user', id: aliceId },
          relation: 'viewer',
          type: 'doc',
          objects: ['salaries', 'roadmap', 'nope', 'readme'],
        }),
      )
      expect(filtered.objects).toEqual(['roadmap', 'readme'])

      const deleted = await json<{ deleted: number }>(
        await call('POST', '/relations/delete', {
          tuples: [`group:eng#member@user:${aliceId}`, 'doc:absent#viewer@user:x'],
        }),
      )
      expect(deleted.deleted).toBe(1)
      expect(await check('doc:readme')).toBe(false)
      // Back for the retrieval test.
      await json(await call('POST', '/relations', { tuples: [`group:eng#member@user:${aliceId}`] }))
    },
  )

  it.skipIf(skipDialect(name))(
    'refuses a malformed tuple in one line and writes nothing',
    async () => {
      const before = await deputy.deps.relationships.read({})
      const res = await call('POST', '/relations', {
        tuples: ['doc:ok#viewer@user:a', 'doc:readme#viewer'],
      })
      const body = await json<{ error: string; message: string }>(res, 400)
      expect(body.error).toBe('ERR_INVALID_INPUT')
      expect(body.message).toMatch(/missing @subject/)
      expect(body.message).not.toContain('\n')
      expect(await deputy.deps.relationships.read({})).toEqual(before)
      expect((await call('GET', '/relations?limit=0')).status).toBe(400)
      expect((await call('GET', '/relations?colour=red')).status).toBe(400)
    },
  )

  it.skipIf(skipDialect(name))(
    'filter-readable: the documents a person may read through an agent (tuples and a policy)',
    async () => {
      await json(
        await call('POST', '/policies', {
          text: RETRIEVAL_POLICY,
        }),
        201,
      )
      const readable = await json<{ objects: string[] }>(
        await call('POST', '/policy/filter-readable', {
          person: 'alice@example.com',
          client_id: agentId,
          type: 'doc',
          objects: ['salaries', 'readme', 'roadmap', 'nope'],
        }),
      )
      expect(readable.objects).toEqual(['readme', 'roadmap'])
      const read = await json<WireDecision>(
        await call('POST', '/policy/explain', {
          person: 'alice@example.com',
          action: 'read',
          resource: 'doc:salaries',
        }),
      )
      expect(read.decision).toBe('deny')
    },
  )

  it.skipIf(skipDialect(name))(
    "a tool name two servers declare: a request names the server or the action's id; a call for server B with server A's action is refused (issue 9 §9)",
    async () => {
      const OTHER = 'https://other.example/mcp'
      await json(
        await call('POST', '/policy/actions', {
          actions: [{ name: 'getUserInfo', resource: OTHER }],
        }),
      )
      const both = await json<{ actions: { id: string; name: string }[] }>(
        await call('GET', '/policy/actions'),
      )
      expect(both.actions.filter((a) => a.name === 'getUserInfo').map((a) => a.id)).toEqual([
        `${OTHER}#getUserInfo`,
        `${SHOP}#getUserInfo`,
      ])
      // The bare name is ambiguous now: the answer names both servers and how to choose.
      const ambiguous = await json<{ error: string; message: string }>(
        await call('POST', '/policy/explain', { person: aliceId, action: 'getUserInfo' }),
        400,
      )
      expect(ambiguous.message).toBe(
        `tool getUserInfo is declared by 2 servers (${OTHER}, ${SHOP}): name the server with resource, or the action by its id, e.g. ${OTHER}#getUserInfo`,
      )
      // Named by server, each is decided by its own policies: the shop's permit is not OTHER's.
      const onShop = await json<WireDecision>(
        await call('POST', '/policy/explain', {
          person: aliceId,
          action: 'getUserInfo',
          resource: SHOP,
        }),
      )
      expect(onShop).toMatchObject({ decision: 'allow', policies: ['shop.tools'] })
      const onOther = await json<WireDecision>(
        await call('POST', '/policy/explain', {
          person: aliceId,
          action: `${OTHER}#getUserInfo`,
        }),
      )
      expect(onOther).toMatchObject({ decision: 'deny', policies: [] })
      // The shop's action asked about OTHER's tool: refused, and the refusal is recorded.
      const crossed = await json<WireDecision>(
        await call('POST', '/policy/authorize', {
          person: aliceId,
          action: `${SHOP}#getUserInfo`,
          resource: OTHER,
        }),
      )
      expect(crossed).toMatchObject({ decision: 'deny', policies: [] })
      expect(crossed.explanation).toBe(
        `Denied: action "${SHOP}#getUserInfo" is the tool getUserInfo of ${SHOP}, not Deputy::Tool "${OTHER}#getUserInfo".`,
      )
      const [event] = await tailAudit(deputy.deps.store, { limit: 1, type: 'policy.decided' })
      expect(event).toMatchObject({ decision: 'deny', reason: 'wrong_resource' })
    },
  )

  it.skipIf(skipDialect(name))(
    'openapi.json describes every policy and relations route',
    async () => {
      const doc = (await (await deputy.app.request('/admin/api/openapi.json')).json()) as {
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
      }
      const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
      )
      expect(routes).toEqual(
        expect.arrayContaining([
          'GET /policies',
          'POST /policies',
          'POST /policies/validate',
          'GET /policies/{id}',
          'DELETE /policies/{id}',
          'GET /policies/{id}/versions',
          'GET /policy/schema',
          'GET /policy/actions',
          'POST /policy/actions',
          'POST /policy/explain',
          'POST /policy/authorize',
          'POST /policy/simulate',
          'POST /policy/filter-readable',
          'GET /relations',
          'POST /relations',
          'POST /relations/delete',
          'POST /relations/check',
          'POST /relations/list-objects',
          'POST /relations/filter',
        ]),
      )
      const refused = JSON.stringify(doc.paths['/policies']?.post?.responses['400'])
      expect(refused).toContain('problems')
      expect(doc.paths['/policies/{id}']?.delete?.responses).toHaveProperty('204')
    },
  )
})
