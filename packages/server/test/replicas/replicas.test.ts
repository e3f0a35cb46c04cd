import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import type { Actor } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { deputyCliAsync } from '../cli/run.js'
import { createPostgresDatabase, POSTGRES_URL } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import {
  buildServer,
  type Credentials,
  issueShopCode,
  postFormTo,
  type Replica,
  SHOP,
  startReplica,
} from '../helpers/replicas.js'

// Issue 14 §1: three `deputy start` processes on one PostgreSQL database (and this test's own
// Deputy, which seeds it: a fourth process). A change that ends authority, made through one of
// them, is in force at the other two within one second — each poll below waits at most that —
// and single use, rotation and the audit chain hold when the three race. The policy poll of the
// three is set to a minute, so a policy reaching them in time came by announcement.
// Raced elsewhere on three processes, not repeated here: codes over 15 rounds and on SQLite too
// (oauth/code-redemption-race.test.ts), CIBA polls and decisions over many rounds
// (approvals/replicas.test.ts), one vault refresh per expiry (vault/race.test.ts).

const ADMIN: Actor = { type: 'system', id: 'test' }
const { resource: RESOURCE, redirect: REDIRECT, verifier: VERIFIER } = SHOP
const ISSUER = 'http://localhost:8080'
const CIBA = 'urn:openid:params:grant-type:ciba'
/** The spec's bound: what every poll below waits for at most. */
const BOUND_MS = 1000

/** Asks every 20 ms until `done`, for at most the bound; true when it got there. */
async function within(probe: () => Promise<boolean>): Promise<boolean> {
  const until = performance.now() + BOUND_MS
  for (;;) {
    if (await probe()) return true
    if (performance.now() > until) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe.skipIf(!POSTGRES_URL)('three replicas on one PostgreSQL database', () => {
  let deputy: TestDeputy
  let replicas: Replica[] = []
  let dir: string
  let key: string
  let appId: string
  let ciba: Credentials
  const masterKey = generateMasterKey()

  beforeAll(async () => {
    buildServer()
    dir = mkdtempSync(join(tmpdir(), 'deputy-replicas-'))
    deputy = await startTestDeputy({
      database: await createPostgresDatabase(),
      config: { masterKey, issuer: ISSUER, sweepIntervalSeconds: 0 },
    })
    const { deps } = deputy
    for (const email of ['alice@example.com', 'bob@example.com'])
      await deps.users.create({ email, name: email.split('@')[0] as string }, ADMIN)
    await deps.resources.put(
      { uri: RESOURCE, scopes: { 'shop:read': 'See orders' }, isDefault: true },
      ADMIN,
    )
    await deps.policies.declareActions([{ name: 'getUserInfo', resource: RESOURCE }], ADMIN)
    appId = (
      await deps.clients.register({ name: 'App', public: true, redirectUris: [REDIRECT] }, ADMIN)
    ).client.clientId
    const created = await deps.clients.register({ name: 'Trader', grantTypes: [CIBA] }, ADMIN)
    ciba = { id: created.client.clientId, secret: created.clientSecret as string }
    key = (await createAdminApiKeys(deps).create('replicas', ADMIN)).key
    const env = {
      DEPUTY_DATABASE_URL: deputy.database.url,
      DEPUTY_MASTER_KEY: masterKey,
      DEPUTY_ISSUER: ISSUER,
      DEPUTY_SWEEP_INTERVAL_SECONDS: '0',
      DEPUTY_POLICY_REFRESH_INTERVAL_MS: '60000',
    }
    replicas = await Promise.all([0, 1, 2].map(() => startReplica(dir, env)))
  }, 180_000)

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()))
    await deputy?.dispose()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const [A, B, C] = [0, 1, 2].map((i) => () => replicas[i] as Replica)

  const form = postFormTo

  const admin = (on: Replica, method: string, path: string, body?: unknown) =>
    fetch(`${on.url}/admin/api${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })

  async function agent(): Promise<Credentials> {
    const created = await deputy.deps.clients.register(
      { name: 'Agent', grantTypes: ['client_credentials'], allowedScopes: ['shop:read'] },
      ADMIN,
    )
    return { id: created.client.clientId, secret: created.clientSecret as string }
  }

  const clientCredentials = (on: Replica, who: Credentials) =>
    form(on, '/token', { grant_type: 'client_credentials', scope: 'shop:read' }, who)

  /** A code for `email` issued as /authorize would, to redeem at any replica. */
  async function newCode(email = 'alice@example.com'): Promise<{ code: string; grantId: string }> {
    const userId = (await deputy.deps.users.findByEmail(email))?.id as string
    return issueShopCode(deputy.deps, { userId, clientId: appId })
  }

  const redeem = (on: Replica, code: string) =>
    form(on, '/token', {
      grant_type: 'authorization_code',
      client_id: appId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: VERIFIER,
    })

  const refresh = (on: Replica, refreshToken: string) =>
    form(on, '/token', {
      grant_type: 'refresh_token',
      client_id: appId,
      refresh_token: refreshToken,
    })

  /** Tokens for `email` through a code redeemed at `on`. */
  async function tokens(on: Replica, email?: string) {
    const { code, grantId } = await newCode(email)
    const res = await redeem(on, code)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { access_token: string; refresh_token: string }
    return { ...body, grantId }
  }

  const errorOf = async (res: Response) => ((await res.json()) as { error?: string }).error

  it('a client disabled on A (admin API) is refused client_credentials at B and C within a second', async () => {
    const who = await agent()
    // B and C have it cached: they just used it.
    for (const on of [B(), C(), B(), C()])
      expect((await clientCredentials(on, who)).status).toBe(200)
    expect(
      (await admin(A(), 'POST', `/clients/${encodeURIComponent(who.id)}/disable`)).status,
    ).toBe(200)
    for (const on of [B(), C()]) {
      expect(await within(async () => (await clientCredentials(on, who)).status === 401)).toBe(true)
      expect(await errorOf(await clientCredentials(on, who))).toBe('invalid_client')
    }
  })

  it('a person disabled on A: their refresh tokens are refused at B and C within a second', async () => {
    const [atB, atC] = [await tokens(B(), 'bob@example.com'), await tokens(C(), 'bob@example.com')]
    const bob = (await deputy.deps.users.findByEmail('bob@example.com'))?.id as string
    const patched = await admin(A(), 'PATCH', `/users/${bob}`, { status: 'disabled' })
    expect(patched.status).toBe(200)
    // People are read from the database on every refresh: refused at once, first try.
    const [b, c] = await Promise.all([
      refresh(B(), atB.refresh_token),
      refresh(C(), atC.refresh_token),
    ])
    expect([b.status, c.status]).toEqual([400, 400])
    expect([await errorOf(b), await errorOf(c)]).toEqual(['invalid_grant', 'invalid_grant'])
  })

  it('a grant revoked on A (RFC 7009): its refresh token is refused at B and C', async () => {
    const issued = await tokens(A())
    const revoked = await form(A(), '/revoke', {
      client_id: appId,
      token: issued.refresh_token,
      token_type_hint: 'refresh_token',
    })
    expect(revoked.status).toBe(200)
    expect(await deputy.deps.grants.isActive(issued.grantId)).toBe(false)
    // Grants and refresh tokens are read from the database on every use: refused at once.
    for (const on of [B(), C()]) {
      const res = await refresh(on, issued.refresh_token)
      expect(res.status).toBe(400)
      expect(await errorOf(res)).toBe('invalid_grant')
    }
  })

  it('a policy written and removed on A decides at B and C within a second', async () => {
    const decides = async (on: Replica) => {
      const res = await admin(on, 'POST', '/policy/explain', {
        person: 'alice@example.com',
        action: 'getUserInfo',
      })
      expect(res.status).toBe(200)
      return ((await res.json()) as { decision: string }).decision
    }
    for (const on of [B(), C()]) expect(await decides(on)).toBe('deny')
    const put = await admin(A(), 'POST', '/policies', {
      text: `@id("info") permit(principal, action == Deputy::Action::"${RESOURCE}#getUserInfo", resource);`,
    })
    expect(put.status).toBe(201)
    for (const on of [B(), C()])
      expect(await within(async () => (await decides(on)) === 'allow')).toBe(true)
    expect((await admin(A(), 'DELETE', '/policies/info')).status).toBe(204)
    for (const on of [B(), C()])
      expect(await within(async () => (await decides(on)) === 'deny')).toBe(true)
  })

  it('a signing key rotated by the CLI: B and C sign with the new key within a second, all three publish it', async () => {
    const who = await agent()
    const kidOf = async (on: Replica) => {
      const res = await clientCredentials(on, who)
      expect(res.status).toBe(200)
      const { access_token } = (await res.json()) as { access_token: string }
      return { kid: decodeProtectedHeader(access_token).kid, token: access_token }
    }
    const before = (await kidOf(B())).kid
    expect((await kidOf(C())).kid).toBe(before)
    const rotated = await deputyCliAsync(['--db', deputy.database.url, 'keys', 'rotate'], {
      cwd: dir,
      env: { DEPUTY_MASTER_KEY: masterKey },
    })
    expect(rotated.status, rotated.stderr).toBe(0)
    const kid = (await deputy.deps.signingKeys.list()).find((k) => k.status === 'active')?.kid
    expect(kid).not.toBe(before)
    for (const on of [B(), C()]) {
      expect(await within(async () => (await kidOf(on)).kid === kid)).toBe(true)
      const { token } = await kidOf(on)
      // Verified with the key set any replica serves: the new key and the retired one are in it.
      for (const served of replicas) {
        const jwks = (await (await fetch(`${served.url}/jwks`)).json()) as JSONWebKeySet
        expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([kid, before]))
        const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER })
        expect(payload.client_id).toBe(who.id)
      }
    }
  })

  it('one code redeemed at all three at once: exactly one gets tokens', async () => {
    for (let round = 0; round < 3; round++) {
      const { code } = await newCode()
      const answers = await Promise.all(replicas.map((r) => redeem(r, code)))
      const statuses = answers.map((a) => a.status).sort()
      expect(statuses, `round ${round}`).toEqual([200, 400, 400])
    }
  })

  it('one refresh token used at all three at once: one rotation, and the reuse ends the family', async () => {
    for (let round = 0; round < 3; round++) {
      const issued = await tokens(replicas[round] as Replica)
      const answers = await Promise.all(replicas.map((r) => refresh(r, issued.refresh_token)))
      const statuses = answers.map((a) => a.status)
      expect(
        statuses.filter((s) => s === 200),
        `round ${round}: ${statuses}`,
      ).toHaveLength(1)
      const winner = answers[statuses.indexOf(200)] as Response
      const { refresh_token: successor } = (await winner.json()) as { refresh_token: string }
      for (const loser of answers.filter((a) => a !== winner))
        expect(await errorOf(loser)).toBe('invalid_grant')
      // A public client has no grace (refresh-tokens.ts): the losers' uses are reuse, which
      // revokes the grant, so the one successor issued no longer works either.
      expect(await deputy.deps.grants.isActive(issued.grantId)).toBe(false)
      expect((await refresh(replicas[(round + 1) % 3] as Replica, successor)).status).toBe(400)
    }
  })

  it('one CIBA request decided at two replicas at once: exactly one decision counts', async () => {
    const asked = await form(
      C(),
      '/bc-authorize',
      { scope: 'openid shop:read', login_hint: 'alice@example.com' },
      ciba,
    )
    expect(asked.status).toBe(200)
    const [request] = await deputy.deps.approvals.list({ clientId: ciba.id, limit: 1 })
    const answers = await Promise.all([
      admin(A(), 'POST', `/approvals/${request?.id}/approve`),
      admin(B(), 'POST', `/approvals/${request?.id}/deny`),
    ])
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409])
    const decided = await deputy.deps.db
      .selectFrom('audit_events')
      .select('type')
      .where('target', '=', JSON.stringify({ type: 'approval', id: request?.id }))
      .where('type', 'in', ['approval.granted', 'approval.denied'])
      .execute()
    expect(decided).toHaveLength(1)
  })

  it('audit appends from all three at once: every acknowledged token is in the chain, which verifies', async () => {
    const who = await agent()
    const before = await deputy.deps.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'token.issued')
      .executeTakeFirstOrThrow()
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => clientCredentials(replicas[i % 3] as Replica, who)),
    )
    expect(answers.every((a) => a.status === 200)).toBe(true)
    const after = await deputy.deps.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'token.issued')
      .executeTakeFirstOrThrow()
    expect(Number(after.n) - Number(before.n)).toBe(30)
    const verified = await deputyCliAsync(['--db', deputy.database.url, 'audit', 'verify'], {
      cwd: dir,
    })
    expect(verified.stderr).toBe('')
    expect(verified.status).toBe(0)
    expect(verified.stdout).toMatch(/^audit chain intact: \d+ records/)
  })
})
