import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkCheckpoints, writeCheckpoint } from '../../src/audit/checkpoints.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { json, oneLineError } from '../cli/run.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { openMigrated, runCli } from './helpers.js'

// Issue 14 §4: signed checkpoints of the audit chain's head, so `deputy audit verify` also
// detects a truncated tail — which the hash chain alone cannot (the shortened chain is valid).

const ADMIN = { type: 'system', id: 'test' } as const

async function addPeople(deputy: TestDeputy, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await deputy.deps.users.create({ email: `p${i}@example.com`, name: `P${i}` }, ADMIN)
  }
}

describe('audit checkpoints', () => {
  let deputy: TestDeputy
  beforeAll(async () => {
    deputy = await startTestDeputy()
    await addPeople(deputy, 0, 5)
  }, 60_000)
  afterAll(async () => {
    await deputy?.close()
    await deputy?.database.dispose()
  })
  const write = () => writeCheckpoint({ ...deputy.deps, issuer: deputy.deps.config.issuer })
  const check = async (given: string[] = []) => {
    const chain = await verifyAuditChain(deputy.deps.store)
    return { chain, report: await checkCheckpoints(deputy.deps.store, chain, given) }
  }

  it('vouches for the head, signed; a chain that goes on past it is fine', async () => {
    const checkpoint = await write()
    expect(checkpoint).not.toBeNull()
    const head = (await verifyAuditChain(deputy.deps.store)).head
    expect(checkpoint?.seq).toBe(head?.seq)
    expect(checkpoint?.hash).toBe(head?.hash)
    // The same head gets no second checkpoint.
    expect((await write())?.jws).toBe(checkpoint?.jws)
    await addPeople(deputy, 10, 2)
    const { chain, report } = await check()
    expect(chain.ok).toBe(true)
    expect(report.problem).toBeUndefined()
    expect(report.latest).toMatchObject({ seq: checkpoint?.seq, source: 'stored' })
  })

  it('finds records cut off the end, which the chain alone cannot', async () => {
    const checkpoint = await write()
    const seq = checkpoint?.seq as number
    await deputy.deps.db
      .deleteFrom('audit_events')
      .where('seq', '>', seq - 3)
      .execute()
    const { chain, report } = await check()
    expect(chain.ok).toBe(true)
    expect(report.problem).toBe(
      `records ${seq - 2} to ${seq} were cut off the end of the chain: it ends at record ${seq - 3}, but the checkpoint of ${checkpoint?.time} saw record ${seq}`,
    )
  })

  it('refuses a checkpoint whose claims were altered, and one signed by a key Deputy never had', async () => {
    // The chain the previous test cut short goes on from its new end.
    await deputy.deps.db.deleteFrom('audit_checkpoints').execute()
    const checkpoint = (await write()) as { jws: string; seq: number }
    const [header, , signature] = checkpoint.jws.split('.')
    const claims = Buffer.from(
      JSON.stringify({ seq: checkpoint.seq - 1, hash: 'f'.repeat(64), iat: 1 }),
    ).toString('base64url')
    const altered = `${header}.${claims}.${signature}`
    expect((await check([altered])).report.problem).toBe(
      'a given checkpoint has a signature that does not verify (forged or altered?)',
    )
    const foreignHeader = Buffer.from(
      JSON.stringify({ alg: 'ES256', kid: 'someone-else', typ: 'deputy-audit-checkpoint+jwt' }),
    ).toString('base64url')
    expect((await check([`${foreignHeader}.${claims}.${signature}`])).report.problem).toBe(
      'a given checkpoint is signed with key someone-else, which Deputy never had',
    )
  })

  it('writes them periodically (auditCheckpointIntervalSeconds)', async () => {
    const periodic = await startTestDeputy({ config: { auditCheckpointIntervalSeconds: 1 } })
    try {
      await addPeople(periodic, 0, 1)
      let rows: unknown[] = []
      for (let i = 0; i < 100 && rows.length === 0; i++) {
        await new Promise((done) => setTimeout(done, 50))
        rows = await periodic.deps.db.selectFrom('audit_checkpoints').selectAll().execute()
      }
      expect(rows.length).toBeGreaterThan(0)
    } finally {
      await periodic.close()
      await periodic.database.dispose()
    }
  })
})

describe('deputy audit checkpoint and verify', () => {
  let dir: string
  let database: string
  const env = { DEPUTY_MASTER_KEY: generateMasterKey() }
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-checkpoint-'))
    database = join(dir, 'deputy.db')
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('prints a checkpoint, and verify fails in one line once the tail is cut, also against a kept JWS', async () => {
    const migrated = await runCli(database, ['migrate'], env)
    expect(migrated.stderr).toBe('')
    expect(migrated.code).toBe(0)
    const empty = await runCli(database, ['audit', 'checkpoint'], env)
    expect(empty.code).toBe(1)
    expect(empty.stderr).toMatch(/the audit chain is empty/)
    for (const who of ['a', 'b', 'c']) {
      const added = await runCli(
        database,
        ['users', 'add', `${who}@example.com`, '--name', who],
        env,
      )
      expect(added.code).toBe(0)
    }
    const made = await runCli(database, ['audit', 'checkpoint', '--json'], env)
    expect(made.code).toBe(0)
    const checkpoint = json<{ seq: number; jws: string }>({ ...made, status: made.code })
    const intact = await runCli(database, ['audit', 'verify'], env)
    expect(intact.code).toBe(0)
    expect(intact.stdout).toContain(`holds record ${checkpoint.seq} of the checkpoint of`)

    // Someone with write access to the database cuts off the last record, and the stored
    // checkpoints with it; the JWS kept elsewhere still tells.
    const store = await openMigrated(database)
    await store.db.deleteFrom('audit_events').where('seq', '>=', checkpoint.seq).execute()
    await store.db.deleteFrom('audit_checkpoints').execute()
    await store.close()
    expect((await runCli(database, ['audit', 'verify'], env)).code).toBe(0)
    const kept = join(dir, 'checkpoint.jws')
    writeFileSync(kept, `${checkpoint.jws}\n`)
    for (const argument of [checkpoint.jws, kept]) {
      const cut = await runCli(database, ['audit', 'verify', '--checkpoint', argument], env)
      oneLineError(
        { status: cut.code, stdout: cut.stdout, stderr: cut.stderr },
        new RegExp(
          `audit chain cut short: record ${checkpoint.seq} was cut off the end of the chain`,
        ),
      )
    }
    const nonsense = await runCli(database, ['audit', 'verify', '--checkpoint', 'nope'], env)
    expect(nonsense.code).toBe(1)
    expect(nonsense.stderr).toMatch(/--checkpoint nope is neither a checkpoint JWS nor a file/)
  }, 120_000)
})
