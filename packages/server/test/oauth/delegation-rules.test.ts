import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import { type CliResult, deputyCli, json, oneLineError } from '../cli/run.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Who may act for whom (issue 13 §1, docs/delegation.md): the operator's delegation rules, set
// through the admin API and `deputy clients set-delegation`, each change audited; the rules'
// effect on the exchange is in delegation.test.ts.

const SYSTEM = { type: 'system', id: 'test' } as const
const R1 = 'https://one.example/api'
const R2 = 'https://two.example/api'

describe('delegation rules: the admin API', () => {
  let deputy: TestDeputy
  let key: string
  let clientId: string
  let publicId: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    key = (await createAdminApiKeys(deputy.deps).create('ci', SYSTEM)).key
    for (const uri of [R1, R2])
      await deputy.deps.resources.put({ uri, scopes: { read: 'Read' } }, SYSTEM)
    clientId = (
      await deputy.deps.clients.register(
        { name: 'B', grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE], allowedResources: [R1] },
        SYSTEM,
      )
    ).client.clientId
    publicId = (
      await deputy.deps.clients.register(
        { name: 'App', public: true, redirectUris: ['http://127.0.0.1:7/cb'] },
        SYSTEM,
      )
    ).client.clientId
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

  it('refuses every route without a valid admin API key', async () => {
    for (const method of ['GET', 'PUT', 'DELETE'])
      expect(
        (await call(method, `/clients/${clientId}/delegation`, undefined, 'Bearer dpk_x')).status,
      ).toBe(401)
  })

  it('sets, reads and clears what a client may act toward, auditing each change', async () => {
    const set = await call('PUT', `/clients/${clientId}/delegation`, {
      to: [R2, R1],
      impersonate: true,
    })
    expect(set.status).toBe(200)
    expect(await set.json()).toEqual({ client_id: clientId, to: [R1, R2], impersonate: true })
    const read = await call('GET', `/clients/${clientId}/delegation`)
    expect(await read.json()).toEqual({ client_id: clientId, to: [R1, R2], impersonate: true })
    expect((await call('DELETE', `/clients/${clientId}/delegation`)).status).toBe(204)
    const cleared = await call('GET', `/clients/${clientId}/delegation`)
    expect(await cleared.json()).toEqual({ client_id: clientId, to: [], impersonate: false })
    const events = await deputy.deps.db
      .selectFrom('audit_events')
      .select(['type', 'data'])
      .where('type', 'in', ['client.delegation-set', 'client.delegation-cleared'])
      .orderBy('seq')
      .execute()
    expect(events.map((e) => e.type)).toEqual([
      'client.delegation-set',
      'client.delegation-cleared',
    ])
    expect(JSON.parse(events[0]?.data as string)).toMatchObject({ resources: [R1, R2] })
  })

  it('an unknown resource or client is 404 and changes nothing; a public client, unknown fields and impersonation without a resource are 400', async () => {
    await call('PUT', `/clients/${clientId}/delegation`, { to: [R1] })
    const unknown = await call('PUT', `/clients/${clientId}/delegation`, {
      to: [R2, 'https://nope.example/api'],
    })
    expect(unknown.status).toBe(404)
    const after = await call('GET', `/clients/${clientId}/delegation`)
    expect(((await after.json()) as { to: string[] }).to).toEqual([R1])
    expect((await call('PUT', '/clients/nope/delegation', { to: [R1] })).status).toBe(404)
    expect((await call('GET', '/clients/nope/delegation')).status).toBe(404)
    expect((await call('PUT', `/clients/${publicId}/delegation`, { to: [R1] })).status).toBe(400)
    expect((await call('PUT', `/clients/${clientId}/delegation`, { to: [R1], x: 1 })).status).toBe(
      400,
    )
    expect(
      (await call('PUT', `/clients/${clientId}/delegation`, { to: [], impersonate: true })).status,
    ).toBe(400)
  })

  it('removing a resource removes the rules that named it', async () => {
    await call('PUT', `/clients/${clientId}/delegation`, { to: [R1, R2] })
    await deputy.deps.resources.remove(R2, SYSTEM)
    const read = await call('GET', `/clients/${clientId}/delegation`)
    expect(((await read.json()) as { to: string[] }).to).toEqual([R1])
  })
})

describe('delegation rules: deputy clients set-delegation', () => {
  let dir: string
  const masterKey = generateMasterKey()
  let run: (args: string[]) => CliResult

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-delegation-'))
    const db = join(dir, 'deputy.db')
    run = (args) =>
      deputyCli(['--db', db, ...args], { cwd: dir, env: { DEPUTY_MASTER_KEY: masterKey } })
    expect(run(['migrate']).status).toBe(0)
    expect(run(['resources', 'add', R1, '--scope', 'read=Read']).status).toBe(0)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('sets (with --impersonate) and clears, and says so in one line', () => {
    const created = json<{ client_id: string }>(
      run([
        '--json',
        'clients',
        'add',
        '--name',
        'B',
        '--grant-type',
        TOKEN_EXCHANGE_GRANT_TYPE,
        '--resource',
        R1,
      ]),
    )
    const id = created.client_id
    const set = run(['clients', 'set-delegation', id, '--to', R1, '--impersonate'])
    expect(set.status).toBe(0)
    expect(set.stdout).toBe(
      `${id} may now act for people toward ${R1}, impersonating them (no act claim)\n`,
    )
    expect(json(run(['--json', 'clients', 'set-delegation', id, '--clear']))).toEqual({
      client_id: id,
      to: [],
      impersonate: false,
    })
    oneLineError(
      run(['clients', 'set-delegation', id]),
      /name a resource with --to, or use --clear/,
    )
  }, 120_000)
})
