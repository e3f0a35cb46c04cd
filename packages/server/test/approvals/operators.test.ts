import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import type { Actor } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { listen, type RunningServer } from '../../src/server.js'
import { type CliResult, deputyCliAsync, json, oneLineError } from '../cli/run.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { buildServer } from '../helpers/replicas.js'
import { freePort } from '../interop/fixture.js'

// Issue 11 §8 (operators: `deputy approvals list|show|approve|deny`, the admin API) and the
// operators' half of §2 (detail types registered per resource by the CLI and the admin API). The
// real CLI and a real Deputy on loopback share one SQLite file.

const ADMIN: Actor = { type: 'system', id: 'test' }
const RESOURCE = 'https://bank.example/api'
const CIBA = 'urn:openid:params:grant-type:ciba'

/** Issue 11 §2's example type. */
const PAYMENT_SCHEMA = {
  type: 'object',
  properties: {
    type: { const: 'payment_initiation' },
    instructedAmount: {
      type: 'object',
      properties: {
        amount: { type: 'string', pattern: '^[0-9]+(\\.[0-9]{2})?$' },
        currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      },
      required: ['amount', 'currency'],
      additionalProperties: false,
    },
    creditorName: { type: 'string', minLength: 1 },
  },
  required: ['type', 'instructedAmount', 'creditorName'],
  additionalProperties: false,
}
const TEMPLATE = 'Pay {instructedAmount.amount} {instructedAmount.currency} to {creditorName}'
const PAYMENT = {
  type: 'payment_initiation',
  instructedAmount: { amount: '120.00', currency: 'EUR' },
  creditorName: 'ACME Shirts',
}

describe('operators: approvals and detail types by CLI and admin API (issue 11 §2, §8)', () => {
  let dir: string
  let deputy: TestDeputy
  let server: RunningServer
  let issuer: string
  let key: string
  let alice: { id: string; email: string }
  let agent: { clientId: string; secret: string }
  let run: (args: string[]) => Promise<CliResult>

  beforeAll(async () => {
    buildServer()
    dir = mkdtempSync(join(tmpdir(), 'deputy-operators-'))
    const db = join(dir, 'deputy.db')
    const masterKey = generateMasterKey()
    const port = await freePort()
    issuer = `http://127.0.0.1:${port}`
    deputy = await startTestDeputy({
      database: { url: db, dispose: async () => {} },
      config: { masterKey, issuer, port, backchannelPollIntervalSeconds: 1 },
    })
    server = await listen(deputy, { port, host: '127.0.0.1' })
    run = (args) =>
      deputyCliAsync(['--db', db, ...args], { cwd: dir, env: { DEPUTY_MASTER_KEY: masterKey } })
    const { deps } = deputy
    key = (await createAdminApiKeys(deps).create('ops', ADMIN)).key
    const user = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
    alice = { id: user.id, email: user.email }
    await deps.resources.put(
      { uri: RESOURCE, name: 'Bank', scopes: { 'payments:initiate': 'Pay for you' } },
      ADMIN,
    )
    const created = await deps.clients.register(
      { name: 'Payment agent', grantTypes: [CIBA], allowedResources: [RESOURCE] },
      ADMIN,
    )
    agent = { clientId: created.client.clientId, secret: created.clientSecret as string }
  }, 120_000)

  afterAll(async () => {
    await server?.shutdown()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const basic = () => `Basic ${btoa(`${agent.clientId}:${agent.secret}`)}`

  async function backchannel(extra: Record<string, string> = {}) {
    const res = await fetch(`${issuer}/bc-authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic() },
      body: new URLSearchParams({
        scope: 'openid payments:initiate',
        login_hint: alice.email,
        resource: RESOURCE,
        ...extra,
      }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  async function token(authReqId: string) {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic() },
      body: new URLSearchParams({ grant_type: CIBA, auth_req_id: authReqId }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  /** A new request for Alice: its auth_req_id and the id operators name it by. */
  async function ask(extra: Record<string, string> = {}) {
    const started = await backchannel(extra)
    expect(started.status).toBe(200)
    const [newest] = await deputy.deps.approvals.list({ userId: alice.id, limit: 1 })
    return { authReqId: started.body.auth_req_id as string, id: newest?.id as string }
  }

  function api(method: string, path: string, body?: unknown, auth = `Bearer ${key}`) {
    return fetch(`${issuer}/admin/api${path}`, {
      method,
      headers: {
        authorization: auth,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  }

  const auditOf = (id: string) =>
    deputy.deps.db
      .selectFrom('audit_events')
      .select(['type', 'actor', 'decision'])
      .where('target', '=', JSON.stringify({ type: 'approval', id }))
      .orderBy('seq')
      .execute()

  describe('detail types (§2)', () => {
    it('deputy resources detail-types add registers payment_initiation; a violating detail at /bc-authorize is invalid_authorization_details naming the field', async () => {
      // Before it is registered the type is unknown to the resource.
      const unknown = await backchannel({ authorization_details: JSON.stringify([PAYMENT]) })
      expect(unknown.body).toMatchObject({ error: 'invalid_authorization_details' })

      const schemaFile = join(dir, 'payment.json')
      writeFileSync(schemaFile, JSON.stringify(PAYMENT_SCHEMA))
      const added = json<Record<string, unknown>>(
        await run([
          '--json',
          'resources',
          'detail-types',
          'add',
          RESOURCE,
          'payment_initiation',
          '--schema-file',
          schemaFile,
          '--template',
          TEMPLATE,
          '--description',
          'A payment from your account',
          '--high-risk',
        ]),
      )
      expect(added).toEqual({
        resource: RESOURCE,
        type: 'payment_initiation',
        description: 'A payment from your account',
        schema: PAYMENT_SCHEMA,
        template: TEMPLATE,
        high_risk: true,
        built_in: false,
      })
      const human = await run(['resources', 'detail-types', 'list', RESOURCE])
      expect(human.status).toBe(0)
      expect(human.stdout).toMatch(/tool_call\s+Run \{tool\}.*yes\s*\n/)
      expect(human.stdout).toMatch(/payment_initiation\s+Pay \{instructedAmount\.amount\}.*yes/)

      for (const [detail, field] of [
        [{ ...PAYMENT, instructedAmount: { amount: '12,00', currency: 'EUR' } }, 'amount'],
        [{ ...PAYMENT, instructedAmount: { amount: '12.00' } }, 'currency'],
        [{ ...PAYMENT, creditorIban: 'DE00' }, 'creditorIban'],
      ] as const) {
        const refused = await backchannel({ authorization_details: JSON.stringify([detail]) })
        expect(refused.status).toBe(400)
        expect(refused.body.error).toBe('invalid_authorization_details')
        expect(refused.body.error_description).toMatch(
          new RegExp(`^authorization_details\\[0\\]\\.(instructedAmount\\.)?${field} `),
        )
      }
      // A valid one is accepted, and the operator reads it in words.
      const { id } = await ask({ authorization_details: JSON.stringify([PAYMENT]) })
      const shown = json<{ details_in_words: string[] }>(
        await run(['--json', 'approvals', 'show', id]),
      )
      expect(shown.details_in_words).toEqual(['Pay 120.00 EUR to ACME Shirts'])
      await run(['approvals', 'deny', id])
    })

    it('a schema that is not a valid JSON Schema 2020-12, or not JSON, is one clear line', async () => {
      const bad = join(dir, 'bad.json')
      writeFileSync(bad, JSON.stringify({ type: 'objekt' }))
      const add = (file: string, resource = RESOURCE) =>
        run([
          'resources',
          'detail-types',
          'add',
          resource,
          'wire',
          '--schema-file',
          file,
          '--template',
          'Wire money',
        ])
      oneLineError(await add(bad), /schema is not a valid JSON Schema \(draft 2020-12\): .*type/)
      writeFileSync(bad, JSON.stringify({ type: 'object', propertiez: {} }))
      oneLineError(await add(bad), /not a valid JSON Schema \(draft 2020-12\): .*propertiez/)
      writeFileSync(bad, '{"type": "object",')
      oneLineError(await add(bad), /--schema-file .*bad\.json is not JSON/)
      writeFileSync(bad, '[]')
      oneLineError(await add(bad), /must hold a JSON Schema object/)
      oneLineError(await add(join(dir, 'missing.json')), /cannot be read \(ENOENT\)/)
      writeFileSync(bad, JSON.stringify({ type: 'object' }))
      oneLineError(
        await add(bad, 'https://nowhere.example/'),
        /no resource https:\/\/nowhere\.example/,
      )
      oneLineError(
        await run(['resources', 'detail-types', 'remove', RESOURCE, 'wire']),
        /has no detail type wire/,
      )
    })

    it('the admin API registers, lists and removes detail types; a bad schema is a 400 naming it', async () => {
      const path = `/resources/${encodeURIComponent(RESOURCE)}/detail-types`
      const put = await api('PUT', `${path}/account_read`, {
        schema: { type: 'object', properties: { iban: { type: 'string' } }, required: ['iban'] },
        template: 'Read the account {iban}',
      })
      expect(put.status).toBe(200)
      expect(await put.json()).toMatchObject({
        type: 'account_read',
        description: 'Read the account {iban}',
        high_risk: false,
      })
      const listed = (await (await api('GET', path)).json()) as {
        detail_types: { type: string }[]
      }
      expect(listed.detail_types.map((t) => t.type)).toEqual([
        'tool_call',
        'account_read',
        'payment_initiation',
      ])
      const bad = await api('PUT', `${path}/account_read`, {
        schema: { type: 'objekt' },
        template: 'x',
      })
      expect(bad.status).toBe(400)
      expect(((await bad.json()) as { message: string }).message).toMatch(
        /^schema is not a valid JSON Schema \(draft 2020-12\)/,
      )
      const misspelt = await api('PUT', `${path}/account_read`, {
        schema: {},
        template: 'x',
        high_risc: true,
      })
      expect(misspelt.status).toBe(400)
      expect(((await misspelt.json()) as { message: string }).message).toBe(
        'high_risc is not a known field',
      )
      expect((await api('DELETE', `${path}/account_read`)).status).toBe(204)
      expect((await api('DELETE', `${path}/account_read`)).status).toBe(404)
      expect((await api('GET', '/resources/nowhere/detail-types')).status).toBe(404)
      const events = await deputy.deps.db
        .selectFrom('audit_events')
        .select(['type', 'actor'])
        .where('type', 'like', 'authorization-detail-type.%')
        .orderBy('seq')
        .execute()
      expect(events.map((e) => [e.type, JSON.parse(e.actor).id])).toEqual([
        ['authorization-detail-type.registered', 'cli'],
        ['authorization-detail-type.registered', expect.stringMatching(/^admin-key:/)],
        ['authorization-detail-type.removed', expect.stringMatching(/^admin-key:/)],
      ])
    })
  })

  describe('deputy approvals (§8)', () => {
    it('list, show and approve: the operator is the actor, recorded before the token can be had', async () => {
      const { id, authReqId } = await ask({ binding_message: 'Pay ACME' })
      const listed = json<{ id: string; status: string }[]>(
        await run(['--json', 'approvals', 'list', '--status', 'pending', '--person', alice.email]),
      )
      expect(listed.map((a) => a.id)).toEqual([id])
      const human = await run(['approvals', 'list', '--client', agent.clientId])
      expect(human.stdout).toMatch(new RegExp(`${id}\\s+pending\\s+alice@example.com\\s+`))
      expect(human.stdout).toMatch(/Pay ACME/)
      expect(
        json<unknown[]>(await run(['--json', 'approvals', 'list', '--client', 'nobody'])),
      ).toEqual([])
      const shown = await run(['approvals', 'show', id])
      expect(shown.stdout).toMatch(/: pending\n/)
      expect(shown.stdout).toMatch(/person\s+alice@example.com/)
      expect(shown.stdout).toMatch(/message\s+Pay ACME/)

      expect(await token(authReqId)).toMatchObject({ body: { error: 'authorization_pending' } })
      const approved = await run(['approvals', 'approve', id])
      expect(approved.stdout).toBe(`approved approval request ${id}\n`)
      const audit = await auditOf(id)
      expect(audit.map((e) => e.type)).toEqual(['approval.requested', 'approval.granted'])
      expect(JSON.parse(audit[1]?.actor as string)).toMatchObject({ type: 'system', id: 'cli' })
      const approval = await deputy.deps.approvals.byId(id)
      expect(approval).toMatchObject({ status: 'approved', decidedBy: { id: 'cli' } })
      await new Promise((resolve) => setTimeout(resolve, 1100))
      const issued = await token(authReqId)
      expect(issued.status).toBe(200)
      expect(
        json<{ consumed_at: string | null }>(await run(['--json', 'approvals', 'show', id])),
      ).toMatchObject({ status: 'approved', consumed_at: expect.any(String) })
    })

    it('deny: the client gets access_denied; a second decision, an unknown id and a bad filter are one clear line', async () => {
      const { id, authReqId } = await ask()
      expect((await run(['approvals', 'deny', id])).stdout).toBe(`denied approval request ${id}\n`)
      expect(await token(authReqId)).toMatchObject({ body: { error: 'access_denied' } })
      oneLineError(
        await run(['approvals', 'approve', id]),
        /approval request .* was already denied/,
      )
      expect((await auditOf(id)).map((e) => e.type)).toEqual([
        'approval.requested',
        'approval.denied',
      ])
      oneLineError(await run(['approvals', 'approve', 'nope']), /no approval request nope/)
      oneLineError(await run(['approvals', 'show', 'nope']), /no approval request nope/)
      oneLineError(
        await run(['approvals', 'list', '--status', 'maybe']),
        /status must be one of pending, approved, denied, expired/,
      )
      oneLineError(
        await run(['approvals', 'list', '--person', 'bob@example.com']),
        /no person bob@/,
      )
    })

    it('an expired request cannot be approved', async () => {
      const { id } = await ask({ requested_expiry: '1' })
      await new Promise((resolve) => setTimeout(resolve, 1100))
      oneLineError(await run(['approvals', 'approve', id]), /approval request .* expired at /)
      expect(json<{ status: string }>(await run(['--json', 'approvals', 'show', id])).status).toBe(
        'expired',
      )
    })
  })

  describe('the admin API (§8)', () => {
    it('lists, shows, approves and denies; the admin key is the actor; decided twice is 409', async () => {
      const first = await ask()
      const second = await ask()
      const pending = (await (
        await api('GET', `/approvals?status=pending&person=${alice.id}`)
      ).json()) as { approvals: { id: string }[] }
      expect(pending.approvals.map((a) => a.id)).toEqual([second.id, first.id])
      const shown = (await (await api('GET', `/approvals/${first.id}`)).json()) as Record<
        string,
        unknown
      >
      expect(shown).toMatchObject({
        id: first.id,
        status: 'pending',
        client_id: agent.clientId,
        user_email: alice.email,
        resource: RESOURCE,
        decided_by: null,
      })

      const approved = await api('POST', `/approvals/${first.id}/approve`)
      expect(approved.status).toBe(200)
      expect(await approved.json()).toMatchObject({
        status: 'approved',
        decided_by: { type: 'system', id: expect.stringMatching(/^admin-key:/), label: 'ops' },
      })
      const denied = await api('POST', `/approvals/${second.id}/deny`)
      expect(await denied.json()).toMatchObject({ status: 'denied' })
      const again = await api('POST', `/approvals/${first.id}/deny`)
      expect(again.status).toBe(409)
      expect(await again.json()).toMatchObject({
        error: 'ERR_CONFLICT',
        message: `approval request ${first.id} was already approved`,
      })
      expect((await api('POST', '/approvals/nope/approve')).status).toBe(404)
      expect((await api('GET', '/approvals/nope')).status).toBe(404)
      expect((await api('GET', '/approvals?status=maybe')).status).toBe(400)
      expect((await api('GET', '/approvals?colour=red')).status).toBe(400)
      const decided = (await (await api('GET', '/approvals?status=approved')).json()) as {
        approvals: { id: string }[]
      }
      expect(decided.approvals.map((a) => a.id)).toContain(first.id)
      expect(decided.approvals.map((a) => a.id)).not.toContain(second.id)
      expect((await auditOf(first.id)).map((e) => [e.type, e.decision])).toEqual([
        ['approval.requested', null],
        ['approval.granted', 'allow'],
      ])
      expect(await token(first.authReqId)).toMatchObject({ status: 200 })
    })

    it('refuses every approval route without a valid admin API key, and decides nothing', async () => {
      const { id } = await ask()
      for (const [method, path] of [
        ['GET', '/approvals'],
        ['GET', `/approvals/${id}`],
        ['POST', `/approvals/${id}/approve`],
        ['POST', `/approvals/${id}/deny`],
        ['GET', `/resources/${encodeURIComponent(RESOURCE)}/detail-types`],
        ['PUT', `/resources/${encodeURIComponent(RESOURCE)}/detail-types/x`],
        ['DELETE', `/resources/${encodeURIComponent(RESOURCE)}/detail-types/payment_initiation`],
      ] as const) {
        const res = await api(method, path, undefined, 'Bearer dpk_wrong')
        expect(res.status, `${method} ${path}`).toBe(401)
      }
      expect((await deputy.deps.approvals.byId(id))?.status).toBe('pending')
      expect(await deputy.deps.detailTypes.names()).toContain('payment_initiation')
      await api('POST', `/approvals/${id}/deny`)
    })

    it('openapi.json describes the approval and detail-type routes', async () => {
      const doc = (await (await api('GET', '/openapi.json')).json()) as {
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
      }
      expect(Object.keys(doc.paths['/approvals/{id}/approve'] ?? {})).toEqual(['post'])
      expect(Object.keys(doc.paths['/approvals/{id}/approve']?.post?.responses ?? {})).toEqual([
        '200',
        '401',
        '403',
        '404',
        '409',
      ])
      expect(Object.keys(doc.paths['/resources/{uri}/detail-types/{type}'] ?? {})).toEqual([
        'put',
        'delete',
      ])
      expect(doc.paths['/approvals']?.get).toBeDefined()
      expect(doc.paths['/resources/{uri}/detail-types']?.get).toBeDefined()
    })
  })
})
