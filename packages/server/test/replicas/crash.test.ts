import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import type { Actor } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { sha256 } from '../../src/lib/random.js'
import { deputyCliAsync } from '../cli/run.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
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

// Issue 14 §2: `kill -9` of a `deputy start` while it answers a load of writes — tokens (each an
// audit append), code redemptions, refresh rotations, approval decisions — loses nothing it
// acknowledged and leaves nothing half-written; SIGTERM lets the requests in flight finish and
// exits within the grace. A few hundred requests, not a soak (that is bench/'s).

const ADMIN: Actor = { type: 'system', id: 'test' }
const { resource: RESOURCE, redirect: REDIRECT, verifier: VERIFIER } = SHOP
const ISSUER = 'http://localhost:8080'
const CIBA = 'urn:openid:params:grant-type:ciba'
/** Acknowledged writes after which the process is killed: enough to be in the middle of it. */
const KILL_AFTER = 60

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `kill -9 and SIGTERM under load (${dialect.name})`,
    () => {
      let deputy: TestDeputy
      let replica: Replica
      let dir: string
      let key: string
      let env: Record<string, string>
      let appId: string
      let userId: string
      let agent: Credentials
      let ciba: Credentials
      /** What the killed process answered with a 2xx. */
      const acknowledged = {
        jtis: [] as string[],
        /** Per redeemed code: its grant and the last refresh token answered for it. */
        chains: [] as { grantId: string; refreshToken: string }[],
        approved: [] as string[],
      }

      beforeAll(async () => {
        buildServer()
        dir = mkdtempSync(join(tmpdir(), 'deputy-crash-'))
        const masterKey = generateMasterKey()
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { masterKey, issuer: ISSUER, sweepIntervalSeconds: 0 },
        })
        const { deps } = deputy
        userId = (await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)).id
        await deps.resources.put(
          { uri: RESOURCE, scopes: { 'shop:read': 'See orders' }, isDefault: true },
          ADMIN,
        )
        appId = (
          await deps.clients.register(
            { name: 'App', public: true, redirectUris: [REDIRECT] },
            ADMIN,
          )
        ).client.clientId
        const machine = await deps.clients.register(
          { name: 'Agent', grantTypes: ['client_credentials'], allowedScopes: ['shop:read'] },
          ADMIN,
        )
        agent = { id: machine.client.clientId, secret: machine.clientSecret as string }
        const trader = await deps.clients.register({ name: 'Trader', grantTypes: [CIBA] }, ADMIN)
        ciba = { id: trader.client.clientId, secret: trader.clientSecret as string }
        key = (await createAdminApiKeys(deps).create('crash', ADMIN)).key
        env = {
          DEPUTY_DATABASE_URL: deputy.database.url,
          DEPUTY_MASTER_KEY: masterKey,
          DEPUTY_ISSUER: ISSUER,
          DEPUTY_SWEEP_INTERVAL_SECONDS: '0',
          DEPUTY_BACKCHANNEL_MAX_PENDING: '1000',
          DEPUTY_SHUTDOWN_GRACE_SECONDS: '1',
        }
        replica = await startReplica(dir, env)
      }, 180_000)

      afterAll(async () => {
        await replica?.stop()
        await deputy?.dispose()
        if (dir) rmSync(dir, { recursive: true, force: true })
      })

      const form = (path: string, params: Record<string, string>, who?: Credentials) =>
        postFormTo(replica, path, params, who)
      const newCode = () => issueShopCode(deputy.deps, { userId, clientId: appId })

      const refresh = (refreshToken: string) =>
        form('/token', {
          grant_type: 'refresh_token',
          client_id: appId,
          refresh_token: refreshToken,
        })

      it('kill -9 in the middle of a load of writes: every acknowledged write is there after a restart', async () => {
        // Requests waiting for a decision, asked before the load (the decisions are the load).
        const pending: string[] = []
        for (let i = 0; i < 20; i++) {
          const asked = await form(
            '/bc-authorize',
            { scope: 'openid shop:read', login_hint: 'alice@example.com' },
            ciba,
          )
          expect(asked.status).toBe(200)
        }
        for (const r of await deputy.deps.approvals.list({ clientId: ciba.id, limit: 20 }))
          pending.push(r.id)

        let count = 0
        let killed = false
        const ack = () => {
          count++
          if (count >= KILL_AFTER && !killed) {
            killed = true
            replica.child.kill('SIGKILL')
          }
        }
        /** Runs `step` until the process is gone (a request that fails is not acknowledged). */
        const worker = async (step: () => Promise<void>) => {
          while (!killed) {
            try {
              await step()
            } catch {
              if (replica.child.exitCode !== null || replica.child.signalCode !== null) return
            }
          }
        }
        const tokens = async () => {
          const res = await form(
            '/token',
            { grant_type: 'client_credentials', scope: 'shop:read' },
            agent,
          )
          if (res.status !== 200) return
          const { access_token } = (await res.json()) as { access_token: string }
          acknowledged.jtis.push(decodeJwt(access_token).jti as string)
          ack()
        }
        const codes = async () => {
          const { code, grantId } = await newCode()
          const res = await form('/token', {
            grant_type: 'authorization_code',
            client_id: appId,
            code,
            redirect_uri: REDIRECT,
            code_verifier: VERIFIER,
          })
          if (res.status !== 200) return
          const body = (await res.json()) as { access_token: string; refresh_token: string }
          acknowledged.jtis.push(decodeJwt(body.access_token).jti as string)
          acknowledged.chains.push({ grantId, refreshToken: body.refresh_token })
          ack()
        }
        const rotations = async () => {
          const chain = acknowledged.chains[count % Math.max(1, acknowledged.chains.length)]
          if (!chain) return void (await new Promise((resolve) => setTimeout(resolve, 5)))
          const sent = chain.refreshToken
          const res = await refresh(sent)
          if (res.status !== 200) return
          const body = (await res.json()) as { access_token: string; refresh_token: string }
          acknowledged.jtis.push(decodeJwt(body.access_token).jti as string)
          if (chain.refreshToken === sent) chain.refreshToken = body.refresh_token
          ack()
        }
        const decisions = async () => {
          const id = pending.shift()
          if (!id) return void (await new Promise((resolve) => setTimeout(resolve, 5)))
          const res = await fetch(`${replica.url}/admin/api/approvals/${id}/approve`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}` },
          })
          if (res.status !== 200) return
          acknowledged.approved.push(id)
          ack()
        }
        await Promise.all([tokens, tokens, codes, codes, rotations, decisions].map(worker))
        await replica.exit
        expect(replica.child.signalCode).toBe('SIGKILL')
        expect(acknowledged.jtis.length).toBeGreaterThan(0)
        expect(acknowledged.chains.length).toBeGreaterThan(0)
        expect(acknowledged.approved.length).toBeGreaterThan(0)

        // Logging at info from here: the SIGTERM test reads what the shutdown says of its grace.
        replica = await startReplica(dir, { ...env, DEPUTY_LOG_LEVEL: 'info' })
        const { db } = deputy.deps

        // Every token answered was audited before it was answered.
        const audited = new Set(
          (
            await db
              .selectFrom('audit_events')
              .select('target')
              .where('type', '=', 'token.issued')
              .execute()
          ).map((r) => (JSON.parse(r.target ?? '{}') as { id?: string }).id),
        )
        expect(acknowledged.jtis.filter((jti) => !audited.has(jti))).toEqual([])

        // Every approval answered as approved is approved, and audited as such.
        for (const id of acknowledged.approved) {
          expect((await deputy.deps.approvals.byId(id))?.status).toBe('approved')
        }
        const granted = await db
          .selectFrom('audit_events')
          .select('target')
          .where('type', '=', 'approval.granted')
          .execute()
        const grantedIds = new Set(
          granted.map((r) => (JSON.parse(r.target ?? '{}') as { id: string }).id),
        )
        expect(acknowledged.approved.filter((id) => !grantedIds.has(id))).toEqual([])

        // Every refresh token answered works at the restarted process, or was rotated by a request
        // the kill left unanswered — and then its successor is stored too.
        for (const chain of acknowledged.chains) {
          const row = await db
            .selectFrom('refresh_tokens')
            .select(['rotated_at', 'replaced_by'])
            .where('token_hash', '=', sha256(chain.refreshToken))
            .executeTakeFirst()
          expect(row, `grant ${chain.grantId}`).toBeDefined()
          if (row?.rotated_at === null) expect((await refresh(chain.refreshToken)).status).toBe(200)
          else expect(row?.replaced_by).not.toBeNull()
        }

        // Nothing half-written: no redeemed code without its refresh family, no rotation without
        // its successor.
        const codesWithoutFamily = await db
          .selectFrom('authorization_codes')
          .select('grant_id')
          .where('redeemed_at', 'is not', null)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('refresh_tokens')
                  .select('token_hash')
                  .whereRef('refresh_tokens.grant_id', '=', 'authorization_codes.grant_id'),
              ),
            ),
          )
          .execute()
        expect(codesWithoutFamily).toEqual([])
        const orphanRotations = await sql<{ n: number }>`
        SELECT count(*) AS n FROM refresh_tokens r WHERE r.replaced_by IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM refresh_tokens s WHERE s.token_hash = r.replaced_by)`.execute(
          db,
        )
        expect(Number(orphanRotations.rows[0]?.n)).toBe(0)

        const verified = await deputyCliAsync(['--db', deputy.database.url, 'audit', 'verify'], {
          cwd: dir,
        })
        expect(verified.stderr).toBe('')
        expect(verified.status).toBe(0)
        expect(verified.stdout).toMatch(/^audit chain intact: \d+ records/)
      })

      it('SIGTERM: requests in flight are answered, a request that never finishes is cut at the grace, exit 0', async () => {
        // A request whose body never finishes arriving: only the grace (1 s here) ends it.
        const stuck = connect(Number(new URL(replica.url).port), '127.0.0.1')
        await new Promise<void>((resolve) => stuck.once('connect', () => resolve()))
        stuck.write(
          'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=',
        )
        const closedStuck = new Promise<void>((resolve) => stuck.once('close', () => resolve()))
        stuck.on('error', () => {})
        // Requests in flight when the signal comes: each one the process took is answered in full.
        const inFlight = Array.from({ length: 20 }, () =>
          form('/token', { grant_type: 'client_credentials', scope: 'shop:read' }, agent).then(
            async (res) => ({ status: res.status, body: await res.text() }),
            () => null,
          ),
        )
        // The first answer shows the process is in the middle of them.
        await Promise.race(inFlight)
        replica.child.kill('SIGTERM')
        const answers = await Promise.all(inFlight)
        expect(await replica.exit).toBe(0)
        await closedStuck
        // The grace it cut the stuck request at is the setting's (1 s here, 10 s by default).
        expect(replica.stdout()).toMatch(/"graceSeconds":1\b.*"msg":"shutting down"/)
        const answered = answers.filter((a) => a !== null)
        expect(answered.length).toBeGreaterThan(0)
        for (const a of answered) {
          expect(a.status).toBe(200)
          expect(JSON.parse(a.body)).toHaveProperty('access_token')
        }
        // Each answered token is in the audit chain.
        const n = await deputy.deps.db
          .selectFrom('audit_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('type', '=', 'token.issued')
          .executeTakeFirstOrThrow()
        expect(Number(n.n)).toBeGreaterThanOrEqual(acknowledged.jtis.length + answered.length)
      })
    },
  )
}
