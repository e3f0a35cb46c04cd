import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import type { Actor } from '../../src/audit/types.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import type { AuthorizationRequest } from '../../src/policy/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { buildServer, type Replica, startReplica } from '../helpers/replicas.js'

// Issue 5 §1: "Every process picks up a new version within seconds (several replicas on
// PostgreSQL included)." Two real processes on one database: this test process runs one Deputy,
// `deputy start` runs another; a policy written through either is observed deciding in the other,
// which is never told about it (no request to the other process makes it reload).

const ADMIN: Actor = { type: 'system', id: 'test' }
const SHOP = 'https://shop.example/mcp'
const REFRESH_MS = 200

/** Asks until `ask` answers what `done` wants; the suite's timeout is the only limit. */
async function eventually<T>(ask: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await ask()
    if (done(value)) return value
    await sleep(REFRESH_MS / 2)
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `policy versions reach another process (${dialect.name})`,
    () => {
      let deputy: TestDeputy
      let replica: Replica
      let dir: string
      let key: string

      beforeAll(async () => {
        buildServer()
        dir = mkdtempSync(join(tmpdir(), 'deputy-propagation-'))
        const masterKey = generateMasterKey()
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { masterKey, policyRefreshIntervalMs: REFRESH_MS },
        })
        await deputy.deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        await deputy.deps.policies.declareActions([{ name: 'getUserInfo', resource: SHOP }], ADMIN)
        key = (await createAdminApiKeys(deputy.deps).create('propagation', ADMIN)).key
        replica = await startReplica(dir, {
          DEPUTY_DATABASE_URL: deputy.database.url,
          DEPUTY_MASTER_KEY: masterKey,
          DEPUTY_POLICY_REFRESH_INTERVAL_MS: String(REFRESH_MS),
        })
      }, 180_000)

      afterAll(async () => {
        await replica?.stop()
        await deputy?.dispose()
        if (dir) rmSync(dir, { recursive: true, force: true })
      })

      /** The other process's decision, through its admin API. */
      async function replicaDecides(): Promise<{
        decision: string
        policies: string[]
        set_version: number
      }> {
        const res = await fetch(`${replica.url}/admin/api/policy/explain`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ person: 'alice@example.com', action: 'getUserInfo' }),
        })
        expect(res.status).toBe(200)
        return (await res.json()) as { decision: string; policies: string[]; set_version: number }
      }

      const info = async (): Promise<AuthorizationRequest> => ({
        sub: (await deputy.deps.users.findByEmail('alice@example.com'))?.id ?? '',
        action: `${SHOP}#getUserInfo`,
        resource: { type: 'Deputy::Tool', id: `${SHOP}#getUserInfo` },
      })

      it('a policy written here is in force in the other process, and so is its removal', async () => {
        const before = await replicaDecides()
        expect(before).toMatchObject({ decision: 'deny', policies: [] })

        await deputy.deps.policies.put(
          `@id("shop.info") permit(principal, action == Deputy::Action::"${SHOP}#getUserInfo", resource);`,
          ADMIN,
        )
        const written = await deputy.deps.policies.setVersion()
        expect(written).toBeGreaterThan(before.set_version)
        const after = await eventually(replicaDecides, (d) => d.decision === 'allow')
        expect(after).toEqual(
          expect.objectContaining({ policies: ['shop.info'], set_version: written }),
        )

        await deputy.deps.policies.remove('shop.info', ADMIN)
        const removed = await deputy.deps.policies.setVersion()
        const denied = await eventually(replicaDecides, (d) => d.decision === 'deny')
        expect(denied).toMatchObject({ policies: [], set_version: removed })
      })

      it('a policy written through the other process is in force here', async () => {
        const request = await info()
        expect((await deputy.deps.policy.explain(request)).decision).toBe('deny')
        const res = await fetch(`${replica.url}/admin/api/policies`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            text: `@id("shop.info-2") permit(principal, action == Deputy::Action::"${SHOP}#getUserInfo", resource);`,
          }),
        })
        expect(res.status).toBe(201)
        const decided = await eventually(
          () => deputy.deps.policy.explain(request),
          (d) => d.decision === 'allow',
        )
        expect(decided.policies).toEqual(['shop.info-2'])
        expect(decided.setVersion).toBe(await deputy.deps.policies.setVersion())
        expect(deputy.deps.policy.loadedVersion()).toBe(decided.setVersion)
      })

      it('a refused write moves no version: the other process decides as before', async () => {
        // A refused write (invalid policy) stores nothing and moves no version: the replica's
        // decision and version stay as they were.
        const inForce = await eventually(replicaDecides, (d) => d.decision === 'allow')
        const res = await fetch(`${replica.url}/admin/api/policies`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            text: '@id("bad") permit(principal, action, resource) when { context.nope };',
          }),
        })
        expect(res.status).toBe(400)
        expect(await deputy.deps.policies.setVersion()).toBe(inForce.set_version)
        expect(await replicaDecides()).toEqual(inForce)
      })
    },
  )
}
