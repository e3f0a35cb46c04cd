import { existsSync, readFileSync } from 'node:fs'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy } from '../helpers/deputy.js'

const PASSWORDS = ['correct horse battery staple', 'Tr0ub4dor&3-but-longer', 'päßwörd-ünïcödé-42']

/** Everything the database can be read as, for a search: the SQLite file and WAL, or every row. */
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
    `no plaintext secrets at rest (${dialect.name})`,
    () => {
      it('the stored bytes hold no private key, master key or password', async () => {
        const database = await dialect.create()
        try {
          const deputy = await startTestDeputy({ database })
          const { deps } = deputy
          const actor = { type: 'system', id: 'test' } as const
          const emails: string[] = []
          for (const [i, password] of PASSWORDS.entries()) {
            const email = `person${i}@example.com`
            emails.push(email)
            await deps.users.create({ email, name: `Person ${i}`, password }, actor)
          }
          await deps.signingKeys.rotate(actor)
          await deps.signingKeys.rotate(actor)
          for (let i = 0; i < 5; i++) {
            await deps.audit.append({
              type: 'test.happened',
              actor,
              target: { type: 'user', id: emails[0] as string },
              data: { n: i },
            })
          }
          const rows = await deps.db
            .selectFrom('signing_keys')
            .select(['kid', 'private_jwk_sealed'])
            .execute()
          expect(rows).toHaveLength(3)
          const privateParts = rows.map(
            (r) =>
              (
                JSON.parse(deps.sealer.open(r.private_jwk_sealed, `signing_keys:${r.kid}`)) as {
                  d: string
                }
              ).d,
          )
          const masterKey = deputy.config.masterKey as string
          await deputy.close()

          const raw = await rawContents(dialect.name, database.url)
          // The search must be able to succeed: what is stored in clear is found.
          for (const email of emails) expect(raw.includes(email)).toBe(true)
          for (const { kid } of rows) expect(raw.includes(kid)).toBe(true)

          const secrets: [string, Buffer][] = [
            ['master key', Buffer.from(masterKey)],
            ['master key bytes', Buffer.from(masterKey, 'base64url')],
            ...PASSWORDS.map((p): [string, Buffer] => [`password ${p}`, Buffer.from(p)]),
            ...privateParts.flatMap((d, i): [string, Buffer][] => [
              [`private key ${i} (d)`, Buffer.from(d)],
              [`private key ${i} bytes`, Buffer.from(d, 'base64url')],
            ]),
          ]
          for (const [what, bytes] of secrets) expect(raw.includes(bytes), what).toBe(false)
        } finally {
          await database.dispose()
        }
      })
    },
  )
}
