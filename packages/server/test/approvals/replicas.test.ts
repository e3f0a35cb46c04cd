import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { decideApproval } from '../../src/approvals/decide.js'
import type { Actor } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { deputyCliAsync } from '../cli/run.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { buildServer, type Replica, startReplica } from '../helpers/replicas.js'

// Issue 11 §6: "A decision taken on one replica wakes the waiting call or poll on another
// (PostgreSQL LISTEN/NOTIFY; in-process on SQLite); under races no approval is lost or used
// twice." Three real `deputy start` processes on one database (and this test's own Deputy, a
// fourth process on it): requests asked on one, decided through the admin API of another, polled
// on a third; polls and decisions raced across all three.

const ADMIN: Actor = { type: 'system', id: 'test' }
const RESOURCE = 'https://trading.example/mcp'
const ISSUER = 'http://localhost:8080'
const CIBA = 'urn:openid:params:grant-type:ciba'
const ROUNDS = 6

interface Credentials {
  clientId: string
  secret: string
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`approvals across replicas (${dialect.name})`, () => {
    let deputy: TestDeputy
    let replicas: Replica[] = []
    let dir: string
    let key: string
    let poller: Credentials
    let pinged: Credentials
    let notifications: Server
    /** Resolvers for the next pings, in order of arrival. */
    const pings: { authorization: string | undefined; body: { auth_req_id: string } }[] = []
    let pinged_: () => void = () => {}

    beforeAll(async () => {
      buildServer()
      dir = mkdtempSync(join(tmpdir(), 'deputy-approval-replicas-'))
      notifications = createServer((req, res) => {
        let body = ''
        req.on('data', (chunk) => {
          body += chunk
        })
        req.on('end', () => {
          pings.push({ authorization: req.headers.authorization, body: JSON.parse(body) })
          res.writeHead(204).end()
          pinged_()
        })
      })
      await new Promise<void>((resolve) => notifications.listen(0, '127.0.0.1', resolve))
      const notifyUrl = `http://127.0.0.1:${(notifications.address() as AddressInfo).port}/ciba`
      const masterKey = generateMasterKey()
      deputy = await startTestDeputy({
        database: await dialect.create(),
        config: {
          masterKey,
          issuer: ISSUER,
          sweepIntervalSeconds: 0,
          dangerouslyAllowHttpLoopbackNotifications: true,
        },
      })
      const { deps } = deputy
      const alice = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
      expect(alice.id).toBeTruthy()
      await deps.resources.put(
        { uri: RESOURCE, scopes: { 'stock:trade': 'Trade stocks' }, isDefault: true },
        ADMIN,
      )
      const register = async (extra: Record<string, unknown>) => {
        const created = await deps.clients.register(
          { name: 'Trading agent', grantTypes: [CIBA], ...extra },
          ADMIN,
        )
        return { clientId: created.client.clientId, secret: created.clientSecret as string }
      }
      poller = await register({})
      pinged = await register({
        backchannelTokenDeliveryMode: 'ping',
        backchannelClientNotificationEndpoint: notifyUrl,
      })
      key = (await createAdminApiKeys(deps).create('replicas', ADMIN)).key
      const env = {
        DEPUTY_DATABASE_URL: deputy.database.url,
        DEPUTY_MASTER_KEY: masterKey,
        DEPUTY_ISSUER: ISSUER,
        DEPUTY_SWEEP_INTERVAL_SECONDS: '0',
        DEPUTY_BACKCHANNEL_POLL_INTERVAL_SECONDS: '1',
        DEPUTY_BACKCHANNEL_MAX_PENDING: '1000',
        DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_NOTIFICATIONS: 'true',
      }
      replicas = await Promise.all([0, 1, 2].map(() => startReplica(dir, env)))
    }, 180_000)

    afterAll(async () => {
      await Promise.all(replicas.map((r) => r.stop()))
      await deputy?.dispose()
      await new Promise((resolve) => notifications?.close(resolve))
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    const replica = (i: number) => replicas[i % replicas.length] as Replica

    async function form(
      on: Replica,
      path: string,
      who: Credentials,
      params: Record<string, string>,
    ): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await fetch(`${on.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${btoa(`${who.clientId}:${who.secret}`)}`,
        },
        body: new URLSearchParams(params),
      })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }

    /** Asks on `on`; returns the auth_req_id and the request's id. */
    async function ask(on: Replica, who: Credentials = poller, extra: Record<string, string> = {}) {
      const started = await form(on, '/bc-authorize', who, {
        scope: 'openid stock:trade',
        login_hint: 'alice@example.com',
        ...extra,
      })
      expect(started.status, JSON.stringify(started.body)).toBe(200)
      const [newest] = await deputy.deps.approvals.list({ clientId: who.clientId, limit: 1 })
      return { authReqId: started.body.auth_req_id as string, id: newest?.id as string }
    }

    const poll = (on: Replica, authReqId: string, who: Credentials = poller) =>
      form(on, '/token', who, { grant_type: CIBA, auth_req_id: authReqId })

    const decide = (on: Replica, id: string, decision: 'approve' | 'deny') =>
      fetch(`${on.url}/admin/api/approvals/${id}/${decision}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
      })

    const decisionsOf = (id: string) =>
      deputy.deps.db
        .selectFrom('audit_events')
        .select('type')
        .where('target', '=', JSON.stringify({ type: 'approval', id }))
        .where('type', 'in', ['approval.granted', 'approval.denied'])
        .execute()

    it('a decision on replica A: a poll on replica B gets the token', async () => {
      const { id, authReqId } = await ask(replica(2))
      expect(await poll(replica(1), authReqId)).toMatchObject({
        body: { error: 'authorization_pending' },
      })
      expect((await decide(replica(0), id, 'approve')).status).toBe(200)
      // The poll interval (1 s) must pass before the next poll is in time.
      await new Promise((resolve) => setTimeout(resolve, 1100))
      const tokens = await poll(replica(1), authReqId)
      expect(tokens.status).toBe(200)
      expect(tokens.body.token_type).toBe('Bearer')
    })

    it('ping mode: the replica that decided pings the client, which fetches its token from another', async () => {
      const { id, authReqId } = await ask(replica(1), pinged, {
        client_notification_token: 'ping-token-42',
      })
      const arrived = new Promise<void>((resolve) => {
        pinged_ = resolve
      })
      expect((await decide(replica(0), id, 'approve')).status).toBe(200)
      await arrived
      expect(pings.at(-1)).toEqual({
        authorization: 'Bearer ping-token-42',
        body: { auth_req_id: authReqId },
      })
      expect((await poll(replica(2), authReqId, pinged)).status).toBe(200)
    })

    it(
      dialect.name === 'postgres'
        ? 'a decision on one replica wakes a call waiting for it in another process (LISTEN/NOTIFY)'
        : 'a decision wakes a call waiting for it in the same process (SQLite signals stay in-process)',
      async () => {
        const { id } = await ask(replica(0))
        // This process waits (as the MCP kit's call does) with no timeout that could end it first.
        const waiting = deputy.deps.approvals.waitForDecision(id, 600_000)
        // Time for the wait's first read, so the decision comes while it waits. Were the decision
        // earlier, that read would see it: the test passes either way, and fails (never
        // resolves) only if a decision does not wake the wait.
        await new Promise((resolve) => setTimeout(resolve, 200))
        if (dialect.name === 'postgres')
          expect((await decide(replica(1), id, 'deny')).status).toBe(200)
        else
          expect(
            (
              await decideApproval(deputy.deps, {
                id,
                decision: 'denied',
                actor: ADMIN,
                shownDigest: null,
              })
            ).status,
          ).toBe('decided')
        expect((await waiting)?.status).toBe('denied')
      },
    )

    it('many polls at once across the replicas for one approved request: exactly one token', async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const { id, authReqId } = await ask(replica(round))
        expect((await decide(replica(round + 1), id, 'approve')).status).toBe(200)
        const answers = await Promise.all(
          Array.from({ length: 12 }, (_, i) => poll(replica(i), authReqId)),
        )
        const statuses = answers.map((a) => a.status)
        expect(
          statuses.filter((s) => s === 200),
          `round ${round}: ${statuses}`,
        ).toHaveLength(1)
        for (const answer of answers.filter((a) => a.status !== 200)) {
          expect(answer.status).toBe(400)
          expect(answer.body.error).toBe('invalid_grant')
        }
        expect((await deputy.deps.approvals.byId(id))?.consumedAt).not.toBeNull()
      }
    })

    it('approve and deny at once on different replicas: exactly one decision counts and is audited', async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const { id, authReqId } = await ask(replica(round))
        const answers = await Promise.all([
          decide(replica(0), id, 'approve'),
          decide(replica(1), id, 'deny'),
          decide(replica(2), id, round % 2 === 0 ? 'approve' : 'deny'),
        ])
        const statuses = answers.map((a) => a.status)
        expect(
          statuses.filter((s) => s === 200),
          `round ${round}: ${statuses}`,
        ).toHaveLength(1)
        expect(statuses.filter((s) => s === 409)).toHaveLength(2)
        const winner = (await answers[statuses.indexOf(200)]?.json()) as { status: string }
        const stored = await deputy.deps.approvals.byId(id)
        expect(stored?.status).toBe(winner.status)
        const recorded = await decisionsOf(id)
        expect(recorded.map((r) => r.type)).toEqual([
          winner.status === 'approved' ? 'approval.granted' : 'approval.denied',
        ])
        const polled = await poll(replica(round + 2), authReqId)
        if (winner.status === 'approved') expect(polled.status).toBe(200)
        else expect(polled.body.error).toBe('access_denied')
      }
    })

    it('the audit chain all of them wrote verifies (deputy audit verify)', async () => {
      const result = await deputyCliAsync(['--db', deputy.database.url, 'audit', 'verify'], {
        cwd: dir,
      })
      expect(result.stderr).toBe('')
      expect(result.status).toBe(0)
      expect(result.stdout).toMatch(/^audit chain intact: \d+ records/)
    })
  })
}
