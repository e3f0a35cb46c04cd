import { readFileSync } from 'node:fs'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveConfig } from '../../src/config/load.js'
import { ConfigSchema } from '../../src/config/schema.js'
import { openDeputy } from '../../src/deputy.js'
import { readMasterKeyFile } from '../../src/keys/master-key.js'
import { rotateMasterKey } from '../../src/keys/rotate-master.js'
import { listen, type RunningServer } from '../../src/server.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { basic, RESOURCE } from '../oauth/token-helpers.js'
import {
  ALL_SEALED,
  expectAllOpenWith,
  SECRETS,
  seedEverySealedTable,
  worldWithKeyFile,
} from './sealed-records.js'

type KeyWorld = Awaited<ReturnType<typeof worldWithKeyFile>>

/** The same database and key file opened as another process would (the CLI, a replica). */
function openAnother(world: KeyWorld) {
  return openDeputy(
    resolveConfig(
      ConfigSchema.parse({
        database: world.deputy.database.url,
        masterKeyFile: world.keyFile,
        logLevel: 'silent',
        issuer: 'http://localhost:8080',
      }),
    ),
    { logger: pino({ level: 'silent' }) },
  )
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `deputy keys rotate-master (issue 12 §3, ${dialect.name})`,
    () => {
      let database: TestDatabase | undefined
      let world: KeyWorld | undefined
      afterEach(async () => {
        await world?.deputy.close()
        await database?.dispose()
        world = undefined
        database = undefined
      })

      async function setUp(): Promise<KeyWorld> {
        database = await dialect.create()
        world = await worldWithKeyFile(database)
        return world
      }

      it('re-seals every sealed record; afterwards each opens with the new key alone', async () => {
        const w = await setUp()
        const seeded = await seedEverySealedTable(w)
        expect(await expectAllOpenWith(w.deputy.deps, w.firstKey)).toEqual(ALL_SEALED)

        const rotation = await rotateMasterKey(w.deputy.deps)

        const file = readMasterKeyFile(w.keyFile)
        expect(file.keys).toHaveLength(1)
        expect(rotation).toMatchObject({
          masterKeyId: file.key.kid,
          resumed: false,
          retired: 'file',
          failed: [],
        })
        expect(rotation.previousKeyIds).not.toContain(file.key.kid)
        expect(Object.keys(rotation.byColumn).sort()).toEqual([...ALL_SEALED].sort())
        expect(await expectAllOpenWith(w.deputy.deps, file.key)).toEqual(ALL_SEALED)

        // A process that knows only the new key reads everything through the modules.
        const fresh = await openAnother(w)
        try {
          await fresh.deps.signingKeys.active()
          expect(await fresh.deps.approvals.pingCredentials(seeded.approvalId)).toMatchObject({
            token: `${SECRETS.notificationToken}-a`,
          })
        } finally {
          await fresh.close()
        }

        const [event] = await w.deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', 'master-key.rotated')
          .execute()
        expect(event).toBeDefined()
        const data = JSON.parse(String(event?.data)) as Record<string, unknown>
        expect(data).toMatchObject({ resealed: rotation.resealed, failed: 0, retired: 'file' })
        // Counts and key ids, never key material.
        expect(JSON.stringify(event)).not.toContain(w.firstKey)
        expect(JSON.stringify(event)).not.toContain(file.key.key.toString('base64url'))
      })

      it('a Deputy serving over HTTP keeps signing tokens before, during and after, and its writes during the rotation are re-sealed', async () => {
        const w = await setUp()
        await seedEverySealedTable(w)
        const server: RunningServer = await listen(w.deputy, { port: 0, host: '127.0.0.1' })
        const token = async () => {
          const response = await fetch(new URL('/token', server.url), {
            method: 'POST',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              ...basic(w.agent.client.clientId, w.agent.secret),
            },
            body: new URLSearchParams({
              grant_type: 'client_credentials',
              resource: RESOURCE,
              scope: 'tools:read',
            }),
          })
          expect(response.status).toBe(200)
          return ((await response.json()) as { access_token: string }).access_token
        }
        try {
          await token()
          // The rotation runs in another process's view (its own key ring), as the CLI does.
          const cli = await openAnother(w)
          let during = 0
          try {
            await rotateMasterKey(cli.deps, {
              batchSize: 1,
              onBatch: async () => {
                during++
                await token()
                // A write by the serving Deputy mid-rotation: a new signing key, sealed then.
                if (during === 2) await w.deputy.deps.signingKeys.rotate()
              },
            })
          } finally {
            await cli.close()
          }
          expect(during).toBeGreaterThan(2)
          await token()
          const file = readMasterKeyFile(w.keyFile)
          expect(file.keys).toHaveLength(1)
          expect(await expectAllOpenWith(w.deputy.deps, file.key)).toEqual(ALL_SEALED)
          // The serving Deputy writes under the new key now, without a restart.
          await w.deputy.deps.signingKeys.rotate()
          await expectAllOpenWith(w.deputy.deps, file.key)
          await token()
        } finally {
          // listen's shutdown closes the Deputy; afterEach must not close it again.
          await server.shutdown()
          world = undefined
        }
      })

      it('a token written while the rotation holds the old value is kept (compare-and-swap), and re-sealed on the next pass', async () => {
        const w = await setUp()
        const seeded = await seedEverySealedTable(w)
        const aad = `connections:${seeded.connectionId}:${w.alice.id}:github-a:access_token`
        let refreshed = false
        const rotation = await rotateMasterKey(w.deputy.deps, {
          beforeWrite: async (entry, key) => {
            if (refreshed || entry.column !== 'access_token_sealed') return
            if (key.id !== seeded.connectionId) return
            refreshed = true
            // A refresh by the serving Deputy lands between the re-seal's read and its write.
            await w.deputy.deps.db
              .updateTable('connections')
              .set({ access_token_sealed: w.deputy.deps.sealer.seal('gho_refreshed', aad) })
              .where('id', '=', seeded.connectionId)
              .execute()
          },
        })
        expect(refreshed).toBe(true)
        expect(rotation.failed).toEqual([])
        const row = await w.deputy.deps.db
          .selectFrom('connections')
          .select('access_token_sealed')
          .where('id', '=', seeded.connectionId)
          .executeTakeFirstOrThrow()
        expect(w.deputy.deps.sealer.open(row.access_token_sealed, aad)).toBe('gho_refreshed')
        expect(await expectAllOpenWith(w.deputy.deps, readMasterKeyFile(w.keyFile).key)).toEqual(
          ALL_SEALED,
        )
      })

      it('an interrupted rotation is finished by running it again, with the same new key', async () => {
        const w = await setUp()
        await seedEverySealedTable(w)
        let batches = 0
        await expect(
          rotateMasterKey(w.deputy.deps, {
            batchSize: 1,
            onBatch: () => {
              if (++batches === 3) throw new Error('interrupted')
            },
          }),
        ).rejects.toThrow('interrupted')
        const halfway = readMasterKeyFile(w.keyFile)
        expect(halfway.keys).toHaveLength(2)

        const rotation = await rotateMasterKey(w.deputy.deps)
        expect(rotation).toMatchObject({
          resumed: true,
          masterKeyId: halfway.key.kid,
          retired: 'file',
        })
        expect(rotation.alreadyCurrent).toBeGreaterThan(0)
        expect(await expectAllOpenWith(w.deputy.deps, halfway.key)).toEqual(ALL_SEALED)
        expect(readMasterKeyFile(w.keyFile).keys.map((k) => k.kid)).toEqual([halfway.key.kid])

        // Once finished, running it again begins the next rotation rather than resuming.
        const again = await rotateMasterKey(w.deputy.deps)
        expect(again).toMatchObject({ resumed: false, previousKeyIds: [halfway.key.kid] })
        expect(again.masterKeyId).not.toBe(halfway.key.kid)
      })

      it('reports a tampered record, re-seals the rest and keeps the old key until told', async () => {
        const w = await setUp()
        const seeded = await seedEverySealedTable(w)
        const row = await w.deputy.deps.db
          .selectFrom('connections')
          .select('access_token_sealed')
          .where('id', '=', seeded.connectionId)
          .executeTakeFirstOrThrow()
        const parts = row.access_token_sealed.split('.')
        const last = parts[5] as string
        parts[5] = `${last[0] === 'A' ? 'B' : 'A'}${last.slice(1)}`
        await w.deputy.deps.db
          .updateTable('connections')
          .set({ access_token_sealed: parts.join('.') })
          .where('id', '=', seeded.connectionId)
          .execute()

        const rotation = await rotateMasterKey(w.deputy.deps)
        expect(rotation.failed).toEqual([
          {
            table: 'connections',
            column: 'access_token_sealed',
            key: { id: seeded.connectionId },
            reason: expect.stringContaining('does not open'),
          },
        ])
        expect(rotation.retired).toBe('kept')
        expect(rotation.resealed).toBe(ALL_SEALED.size + 1 /* two signing keys */ - 1)
        expect(JSON.stringify(rotation)).not.toContain(SECRETS.accessToken)
        expect(readMasterKeyFile(w.keyFile).keys).toHaveLength(2)

        const retired = await rotateMasterKey(w.deputy.deps, { retireDespiteFailures: true })
        expect(retired).toMatchObject({ resumed: true, retired: 'file', resealed: 0 })
        expect(readMasterKeyFile(w.keyFile).keys).toHaveLength(1)
        expect(readFileSync(w.keyFile, 'utf8')).not.toContain(w.firstKey)
      })
    },
  )
}
