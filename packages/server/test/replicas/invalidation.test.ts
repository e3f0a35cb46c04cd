import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import {
  createPostgresDatabase,
  createSqliteDatabase,
  DIALECTS,
  POSTGRES_URL,
  skipDialect,
  type TestDatabase,
} from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 14 §1: a change that ends authority reaches every process on the database within one
// second, whatever it cached. Two Deputies in this process on one database stand for two
// processes: each has its own store, so its own signals, counters checks and caches. On SQLite
// the only way from one to the other is the change counter (store/invalidations.ts); on
// PostgreSQL the announcement (LISTEN/NOTIFY) arrives first, and the counter backs it up.
// The three-process version of these is replicas.test.ts.

const ADMIN = { type: 'system', id: 'test' } as const
const RESOURCE = 'https://api.example/mcp'
/** The spec's bound: what every poll below waits for at most. */
const BOUND_MS = 1000

/** Polls `probe` every 20 ms until it is true or the bound has passed; says which. */
async function within(bound: number, probe: () => Promise<boolean>): Promise<boolean> {
  const until = performance.now() + bound
  for (;;) {
    if (await probe()) return true
    if (performance.now() > until) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `changes reach another process's caches (${dialect.name})`,
    () => {
      let database: TestDatabase
      let a: TestDeputy
      let b: TestDeputy

      beforeAll(async () => {
        database = await dialect.create()
        const masterKey = generateMasterKey()
        a = await startTestDeputy({ database, config: { masterKey, sweepIntervalSeconds: 0 } })
        b = await startTestDeputy({ database, config: { masterKey, sweepIntervalSeconds: 0 } })
        await a.deps.resources.put(
          { uri: RESOURCE, scopes: { 'tools:read': 'Read' }, isDefault: true },
          ADMIN,
        )
      })
      afterAll(async () => {
        await b?.close()
        await a?.dispose()
      })

      async function agent() {
        const created = await a.deps.clients.register(
          { name: 'Agent', grantTypes: ['client_credentials'], allowedScopes: ['tools:read'] },
          ADMIN,
        )
        return { id: created.client.clientId, secret: created.clientSecret as string }
      }

      const token = (on: TestDeputy, who: { id: string; secret: string }) =>
        on.app.request('/token', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${btoa(`${who.id}:${who.secret}`)}`,
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'tools:read' }),
        })

      it('a client disabled in one process is refused by the other within a second, though it had it cached', async () => {
        const who = await agent()
        expect((await token(b, who)).status).toBe(200)
        expect((await token(b, who)).status).toBe(200)
        await a.deps.clients.disable(who.id, ADMIN)
        expect(await within(BOUND_MS, async () => (await token(b, who)).status === 401)).toBe(true)
        const refused = (await (await token(b, who)).json()) as { error: string }
        expect(refused.error).toBe('invalid_client')
      })

      it('a client deleted in one process is unknown to the other within a second', async () => {
        const who = await agent()
        expect((await b.deps.clients.resolve(who.id))?.status).toBe('active')
        await a.deps.clients.delete(who.id, ADMIN)
        expect(await within(BOUND_MS, async () => !(await b.deps.clients.resolve(who.id)))).toBe(
          true,
        )
      })

      it('a resource removed in one process is no longer a target in the other within a second', async () => {
        const uri = 'https://gone.example/mcp'
        await a.deps.resources.put({ uri, scopes: { read: 'Read' } }, ADMIN)
        expect(await within(BOUND_MS, async () => !!(await b.deps.resources.get(uri)))).toBe(true)
        await a.deps.resources.remove(uri, ADMIN)
        expect(await within(BOUND_MS, async () => !(await b.deps.resources.get(uri)))).toBe(true)
      })

      it('a signing key rotated in one process signs the other’s next tokens within a second', async () => {
        const before = await b.deps.signingKeys.active()
        expect((await a.deps.signingKeys.active()).kid).toBe(before.kid)
        const rotation = await a.deps.signingKeys.rotate(ADMIN)
        expect(rotation.active.kid).not.toBe(before.kid)
        expect(
          await within(
            BOUND_MS,
            async () => (await b.deps.signingKeys.active()).kid === rotation.active.kid,
          ),
        ).toBe(true)
      })

      it('the negative: without a change, what is cached stays (the checks drop nothing)', async () => {
        const who = await agent()
        expect((await token(b, who)).status).toBe(200)
        // Written behind Deputy's back (no counter, no announcement): the cache keeps its copy,
        // which is what shows the drops above come from the announcements and counters.
        await b.deps.db
          .updateTable('clients')
          .set({ status: 'disabled' })
          .where('client_id', '=', who.id)
          .execute()
        expect((await token(b, who)).status).toBe(200)
      })
    },
  )
}

describe.skipIf(!POSTGRES_URL)(
  'PostgreSQL: announcements, and a listener that lost its connection',
  () => {
    let database: TestDatabase
    let writer: Store
    let reader: Store

    beforeAll(async () => {
      database = await createPostgresDatabase()
      // Counter checks once a minute: whatever reaches `reader` within the bound came by NOTIFY.
      writer = openStore(database.url, { cacheCheckIntervalMs: 60_000 })
      reader = openStore(database.url, { cacheCheckIntervalMs: 60_000 })
      await migrateToLatest(writer)
    })
    afterAll(async () => {
      await reader?.close()
      await writer?.close()
      await database?.dispose()
    })

    it('an announcement drops the one entry in the other process at once (LISTEN/NOTIFY)', async () => {
      const dropped: (string | undefined)[] = []
      reader.invalidations.subscribe('clients', (key) => dropped.push(key))
      await reader.signals.ready('deputy_invalidate')
      // The first check and the LISTEN being in place drop everything; wait for those to pass.
      await within(BOUND_MS, async () => dropped.length >= 2)
      dropped.length = 0
      await writer.invalidations.announce('clients', 'agent-1')
      expect(await within(BOUND_MS, async () => dropped.includes('agent-1'))).toBe(true)
    })

    it('a listener whose connection is cut drops everything: what it missed cannot linger', async () => {
      const dropped: (string | undefined)[] = []
      reader.invalidations.subscribe('resources', (key) => dropped.push(key))
      await within(BOUND_MS, async () => dropped.length > 0)
      dropped.length = 0
      const admin = new pg.Client({ connectionString: database.url })
      await admin.connect()
      try {
        const cut = await admin.query(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`,
        )
        expect(cut.rows.length).toBeGreaterThan(0)
      } finally {
        await admin.end()
      }
      // Dropped when the connection failed (everything: `undefined`), and again once it listens.
      expect(await within(BOUND_MS, async () => dropped.includes(undefined))).toBe(true)
      // It listens again (retrying after a second): announcements reach it once more.
      expect(
        await within(5 * BOUND_MS, async () => {
          await writer.invalidations.announce('resources', 'https://x.example/mcp')
          return dropped.includes('https://x.example/mcp')
        }),
      ).toBe(true)
    })
  },
)

describe('SQLite: processes on one file hear of each other only through the counter', () => {
  let database: TestDatabase
  let writer: Store
  let reader: Store

  beforeAll(async () => {
    database = await createSqliteDatabase()
    writer = openStore(database.url)
    reader = openStore(database.url, { cacheCheckIntervalMs: 100 })
    await migrateToLatest(writer)
  })
  afterAll(async () => {
    await reader?.close()
    await writer?.close()
    await database?.dispose()
  })

  it('a counter bumped by another connection drops the whole kind at the next check', async () => {
    const dropped: (string | undefined)[] = []
    reader.invalidations.subscribe('clients', (key) => dropped.push(key))
    await within(BOUND_MS, async () => dropped.length > 0)
    dropped.length = 0
    // The announcement stays in the writer's process (SQLite signals are in-process); the
    // counter, written in the change's transaction, is what reaches the reader.
    await writer.invalidations.announce('clients', 'agent-1')
    await writer.db.transaction().execute((trx) => writer.invalidations.mark(trx, 'clients'))
    expect(await within(BOUND_MS, async () => dropped.includes(undefined))).toBe(true)
    expect(dropped).not.toContain('agent-1')
  })
})
