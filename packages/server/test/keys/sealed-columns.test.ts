import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { SEALED_COLUMNS } from '../../src/keys/sealed-columns.js'
import { openStore } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'

/** Every `table.column` of a migrated database whose name says it holds a sealed value. */
async function sealedColumnsIn(db: Kysely<unknown>): Promise<string[]> {
  const tables = await db.introspection.getTables()
  return tables
    .flatMap((t) => t.columns.map((c) => `${t.name}.${c.name}`))
    .filter((name) => name.endsWith('_sealed'))
    .sort()
}

/** What the registry covers as columns (a sealed JSON field is named after its field). */
const REGISTERED = new Set(
  SEALED_COLUMNS.flatMap((c) => [`${c.table}.${c.column}`, `${c.table}.${c.jsonField}`]),
)

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `the registry of sealed columns knows every *_sealed column (${dialect.name})`,
    () => {
      it('every *_sealed column of the migrated schema is in keys/sealed-columns.ts', async () => {
        const database = await dialect.create()
        const store = openStore(database.url)
        try {
          await migrateToLatest(store)
          const found = await sealedColumnsIn(store.db as unknown as Kysely<unknown>)
          expect(found.length).toBeGreaterThanOrEqual(7)
          expect(found.filter((name) => !REGISTERED.has(name))).toEqual([])
          // and the registry names no column that does not exist
          const columns = new Set(
            (await store.db.introspection.getTables()).flatMap((t) =>
              t.columns.map((c) => `${t.name}.${c.name}`),
            ),
          )
          for (const entry of SEALED_COLUMNS) {
            for (const c of [entry.column, ...entry.keys, ...(entry.reads ?? [])])
              expect(columns, `${entry.table}.${c}`).toContain(`${entry.table}.${c}`)
          }

          // A later migration that adds a sealed column the registry does not know is caught.
          await sql`CREATE TABLE future_module (id text PRIMARY KEY, secret_sealed text)`.execute(
            store.db,
          )
          const after = await sealedColumnsIn(store.db as unknown as Kysely<unknown>)
          expect(after.filter((name) => !REGISTERED.has(name))).toEqual([
            'future_module.secret_sealed',
          ])
        } finally {
          await store.close()
          await database.dispose()
        }
      })
    },
  )
}
