import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browser } from '../helpers/sign-in.js'
import { deputyCli } from './run.js'

describe('deputy audit digest', () => {
  let deputy: TestDeputy
  beforeAll(async () => {
    deputy = await startTestDeputy()
  })
  afterAll(() => deputy?.dispose())

  it('prints the digest a typed email that matches no account is recorded as, so an operator can find its records', async () => {
    await browser(deputy).signIn('Someone.Else@Example.com', 'a wrong guess')
    const failed = await deputy.deps.db
      .selectFrom('audit_events')
      .select('data')
      .where('type', '=', 'login.failed')
      .executeTakeFirstOrThrow()
    const recorded = JSON.parse(failed.data).email as string
    expect(recorded).toMatch(/^hmac-sha-256:[0-9a-f]{64}$/)

    const env = { DEPUTY_MASTER_KEY: deputy.config.masterKey as string }
    const printed = deputyCli(
      ['audit', 'digest', '  someone.else@example.COM ', '--db', deputy.database.url],
      { env },
    )
    expect(printed.stderr).toBe('')
    expect(printed.status).toBe(0)
    expect(printed.stdout.trim()).toBe(recorded)
    // Without the master key the digest cannot be recomputed: another key, another digest.
    const other = deputyCli(
      ['audit', 'digest', 'someone.else@example.com', '--db', deputy.database.url],
      {
        env: { DEPUTY_MASTER_KEY: 'A'.repeat(43) },
      },
    )
    expect(other.stdout.trim()).not.toBe(recorded)
  })
})
