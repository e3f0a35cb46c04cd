import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { buildServer } from '../helpers/replicas.js'
import {
  connectThroughLink,
  PROVIDER,
  startVaultFixture,
  type VaultFixture,
} from './vault-fixture.js'

// Issue 12 §4: "Three processes asking at once for an expired token cause exactly one refresh at
// the provider (a test counts them)." Three real node processes open Deputy from the built
// package on one database (SQLite file, PostgreSQL), wait at a barrier, and each asks the vault
// for the same person's expired token; the local OpenID provider counts refresh grants. It
// rotates refresh tokens and revokes the grant when a used one comes back, as RFC 9700 §4.14.2
// asks of providers, so a second refresh would also show as a failure.

const CHILD = join(import.meta.dirname, 'access-token-child.mjs')
const PROCESSES = 3

interface Outcome {
  ok: boolean
  accessToken?: string
  code?: string
}

/** Starts one racer and resolves once it has opened Deputy and waits for "go". */
function startRacer(env: Record<string, string>): Promise<{
  child: ChildProcess
  outcome: Promise<Outcome>
}> {
  const child = spawn(process.execPath, [CHILD], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  let answered: (o: Outcome) => void
  const outcome = new Promise<Outcome>((resolve) => {
    answered = resolve
  })
  return new Promise((ready, fail) => {
    lines.on('line', (line) => {
      if (line === 'ready') ready({ child, outcome })
      else answered(JSON.parse(line) as Outcome)
    })
    child.once('exit', (code) => {
      if (code !== 0) fail(new Error(`racer exited with ${code}: ${stderr}`))
    })
  })
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `the refresh race across processes (${dialect.name})`,
    () => {
      let f: VaultFixture
      const children: ChildProcess[] = []

      beforeAll(async () => {
        buildServer()
        f = await startVaultFixture({
          database: await dialect.create(),
          upstream: { accessTokenTtl: 600 },
        })
        const back = await connectThroughLink(f.browser, `/connect/${PROVIDER}`)
        expect(back.status).toBe(303)
      }, 120_000)

      afterAll(async () => {
        for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
        await f?.close()
      })

      async function race(): Promise<Outcome[]> {
        const env = {
          VAULT_CHILD_CONFIG: JSON.stringify({
            config: {
              masterKey: f.deputy.config.masterKey,
              database: f.deputy.database.url,
              logLevel: 'silent',
              issuer: 'http://localhost:8080',
              sweepIntervalSeconds: 0,
              dangerouslyAllowHttpLoopbackProviders: true,
            },
            userId: f.aliceId,
            provider: PROVIDER,
          }),
        }
        const racers = await Promise.all(Array.from({ length: PROCESSES }, () => startRacer(env)))
        children.push(...racers.map((r) => r.child))
        for (const r of racers) r.child.stdin?.write('go\n')
        return Promise.all(racers.map((r) => r.outcome))
      }

      /** Makes the stored access token expired, here and at the provider. */
      async function expireToken() {
        f.upstream.expireAccessTokens()
        await f.deputy.deps.db
          .updateTable('connections')
          .set({ access_token_expires_at: Date.now() - 1000 })
          .execute()
      }

      it('three processes asking at once for an expired token cause exactly one refresh', async () => {
        await expireToken()
        const before = { ...f.upstream.counts }
        const outcomes = await race()
        expect(outcomes.map((o) => o.ok)).toEqual([true, true, true])
        expect(f.upstream.counts.refresh - before.refresh).toBe(1)
        expect(f.upstream.counts.refreshRejected - before.refreshRejected).toBe(0)
        // All three hold the one refreshed token, and the third-party API takes it.
        const tokens = new Set(outcomes.map((o) => o.accessToken))
        expect(tokens.size).toBe(1)
        const me = await fetch(`${f.api.url}/me`, {
          headers: { authorization: `Bearer ${[...tokens][0]}` },
        })
        expect(me.status).toBe(200)
        const row = await f.deputy.deps.db
          .selectFrom('connections')
          .selectAll()
          .executeTakeFirstOrThrow()
        expect(row).toMatchObject({ status: 'active', refresh_lease_until: null })
      }, 120_000)

      it('again, from the new token: one more refresh, the grant still alive upstream', async () => {
        await expireToken()
        const before = f.upstream.counts.refresh
        const outcomes = await race()
        expect(outcomes.every((o) => o.ok)).toBe(true)
        expect(f.upstream.counts.refresh - before).toBe(1)
        expect(f.upstream.live('alice-sub').grants).toBeGreaterThan(0)
      }, 120_000)

      it('a provider answering 503 to the race: one attempt, all three told provider_unavailable', async () => {
        await expireToken()
        f.upstream.failTokenRequests(1)
        const before = f.upstream.counts.token
        const outcomes = await race()
        expect(outcomes.map((o) => o.code)).toEqual([
          'provider_unavailable',
          'provider_unavailable',
          'provider_unavailable',
        ])
        expect(f.upstream.counts.token - before).toBe(1)
      }, 120_000)
    },
  )
}
