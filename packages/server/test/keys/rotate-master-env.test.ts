import { existsSync, readFileSync } from 'node:fs'
import pg from 'pg'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { openDeputy } from '../../src/deputy.js'
import { generateMasterKey, readMasterKeyFile } from '../../src/keys/master-key.js'
import { rotateMasterKey } from '../../src/keys/rotate-master.js'
import { createSqliteDatabase, DIALECTS, skipDialect } from '../helpers/databases.js'
import { testConfig } from '../helpers/deputy.js'
import { createWorld } from '../oauth/token-helpers.js'
import { lines, runDeputy } from './cli-helpers.js'
import {
  ALL_SEALED,
  expectAllOpenWith,
  SECRETS,
  seedEverySealedTable,
  worldWithKeyFile,
} from './sealed-records.js'

/** Everything the database can be read as: the SQLite file, WAL and journal, or every row. */
async function rawContents(dialect: 'sqlite' | 'postgres', url: string): Promise<Buffer> {
  if (dialect === 'sqlite') {
    const files = [url, `${url}-wal`, `${url}-journal`].filter((f) => existsSync(f))
    return Buffer.concat(files.map((f) => readFileSync(f)))
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tables = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
       WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    )
    const chunks: string[] = []
    for (const { table_name } of tables.rows) {
      const rows = await client.query<{ row: string }>(
        `SELECT row_to_json(t)::text AS row FROM "${table_name}" t`,
      )
      for (const r of rows.rows) chunks.push(r.row)
    }
    return Buffer.from(chunks.join('\n'), 'utf8')
  } finally {
    await client.end()
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `master-key re-seal leaves no plaintext token in the database (${dialect.name})`,
    () => {
      it('provider secrets, connection tokens, webhook secrets and both master keys appear nowhere in the stored bytes', async () => {
        const database = await dialect.create()
        const world = await worldWithKeyFile(database)
        try {
          await seedEverySealedTable(world)
          await rotateMasterKey(world.deputy.deps)
          const newKey = readMasterKeyFile(world.keyFile).key.key.toString('base64url')
          await world.deputy.close()
          const raw = await rawContents(dialect.name, database.url)
          expect(raw.length).toBeGreaterThan(10_000)
          for (const secret of [...Object.values(SECRETS), world.firstKey, newKey]) {
            expect(raw.includes(Buffer.from(secret, 'utf8')), secret).toBe(false)
          }
          // The search can fail: a value stored in the clear is found.
          expect(raw.includes(Buffer.from(world.agent.client.clientId, 'utf8'))).toBe(true)
        } finally {
          await database.dispose()
        }
      })
    },
  )
}

describe('rotate-master with keys from the environment (DEPUTY_MASTER_KEY, DEPUTY_MASTER_KEY_PREVIOUS)', () => {
  it('re-seals under DEPUTY_MASTER_KEY with the old key as previous, and says what the operator removes', async () => {
    const database = await createSqliteDatabase()
    const oldKey = generateMasterKey()
    const newKey = generateMasterKey()
    const world = await createWorld({ database, config: { masterKey: oldKey } })
    try {
      await seedEverySealedTable(world)
      await world.deputy.close()
      const open = (settings: { masterKey: string; masterKeyPrevious?: string }) =>
        openDeputy(testConfig(database.url, settings), { logger: pino({ level: 'silent' }) })

      // The new key alone cannot read what the old one sealed: the operator lists it as previous.
      const withBoth = await open({ masterKey: newKey, masterKeyPrevious: oldKey })
      try {
        await expect(
          rotateMasterKey(withBoth.deps, { newKey: generateMasterKey() }),
        ).rejects.toThrow(/DEPUTY_MASTER_KEY/)
        const rotation = await rotateMasterKey(withBoth.deps)
        expect(rotation.retired).toBe('environment')
        expect(rotation.operatorAction).toMatch(/remove DEPUTY_MASTER_KEY_PREVIOUS/)
        expect(rotation.failed).toEqual([])
      } finally {
        await withBoth.close()
      }
      const alone = await open({ masterKey: newKey })
      try {
        expect(await expectAllOpenWith(alone.deps, newKey)).toEqual(ALL_SEALED)
        await alone.deps.signingKeys.active()
      } finally {
        await alone.close()
      }
    } finally {
      await database.dispose()
    }
  })
})

describe('deputy keys rotate-master (the CLI)', () => {
  it('rotates the key file, prints the counts, and an unreadable new key file is one clear line', async () => {
    const database = await createSqliteDatabase()
    const world = await worldWithKeyFile(database)
    await seedEverySealedTable(world)
    await world.deputy.close()
    try {
      const env = { DEPUTY_MASTER_KEY_FILE: world.keyFile }
      const missing = runDeputy(
        ['keys', 'rotate-master', '--db', database.url, '--new-key-file', `${world.keyFile}.nope`],
        { env },
      )
      expect(missing.status).not.toBe(0)
      expect(lines(missing.stderr)).toHaveLength(1)
      expect(readMasterKeyFile(world.keyFile).key.key.toString('base64url')).toBe(world.firstKey)

      const result = runDeputy(['keys', 'rotate-master', '--db', database.url], { env })
      expect(result.stderr).toBe('')
      expect(result.status).toBe(0)
      const file = readMasterKeyFile(world.keyFile)
      expect(file.keys).toHaveLength(1)
      expect(result.stdout).toContain(`every record is sealed with master key ${file.key.kid}`)
      expect(result.stdout).toMatch(/re-sealed \d+ record/)
      expect(result.stdout).not.toContain(world.firstKey)
      expect(result.stdout).not.toContain(file.key.key.toString('base64url'))

      const json = runDeputy(['keys', 'rotate-master', '--db', database.url, '--json'], { env })
      expect(json.status).toBe(0)
      expect(JSON.parse(json.stdout)).toMatchObject({ retired: 'file', resumed: false })
    } finally {
      await database.dispose()
    }
    // Three CLI starts: a safety net for a loaded machine, not a timing assertion.
  }, 120_000)
})
