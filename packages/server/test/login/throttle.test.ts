import { afterEach, describe, expect, it } from 'vitest'
import type { ConfigInput } from '../../src/config/schema.js'
import { listen, type RunningServer } from '../../src/server.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { browserAt } from '../helpers/loopback.js'

// Sign-in throttling over real HTTP on loopback: each "machine" is its own 127.x address, so the
// server sees the socket addresses a deployment would.

const ALICE = {
  email: 'alice@example.com',
  name: 'Alice Example',
  password: 'correct horse battery',
}
const ATTACKER = '127.0.0.2'
const ALICE_LAPTOP = '127.0.0.3'
const PROXY = '127.0.0.10'

function manualClock(start = Date.parse('2026-03-01T09:00:00Z')) {
  let now = start
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000
    },
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`sign-in throttling on ${dialect.name}`, () => {
    let deputy: TestDeputy
    let server: RunningServer
    let clock: ReturnType<typeof manualClock>

    async function start(config: ConfigInput = {}): Promise<string> {
      clock = manualClock()
      deputy = await startTestDeputy({ clock, database: await dialect.create(), config })
      await deputy.deps.users.create(ALICE, { type: 'system', id: 'test' })
      server = await listen(deputy, { port: 0, host: '127.0.0.1' })
      return server.url
    }
    afterEach(async () => {
      await server?.shutdown()
      await deputy?.database.dispose()
    })

    async function auditRows() {
      return deputy.deps.db.selectFrom('audit_events').selectAll().orderBy('seq').execute()
    }

    it('a wrong password from one address never stops the right password from another', async () => {
      const origin = await start()
      const attacker = browserAt(origin, ATTACKER)
      const statuses: number[] = []
      for (let i = 0; i < 8; i++)
        statuses.push((await attacker.signIn(ALICE.email, `guess ${i}`)).status)
      expect(statuses.slice(0, 4)).toEqual([400, 400, 400, 400])
      expect(statuses.slice(4)).toEqual([429, 429, 429, 429])
      const alice = await browserAt(origin, ALICE_LAPTOP).signIn(ALICE.email, ALICE.password)
      expect(alice.status).toBe(303)
      expect(alice.headers.get('location')).toBe('/account')
    })

    it('the right password from a new address still works while an attacker hammers the account', async () => {
      const origin = await start()
      const attacker = browserAt(origin, ATTACKER)
      const csrf = await attacker.openLogin()
      for (let round = 0; round < 6; round++) {
        // A burst of guesses, then the person signs in from her laptop in the middle of it.
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            attacker.postLogin(csrf, ALICE.email, `g${round}-${i}`),
          ),
        )
        const alice = await browserAt(origin, ALICE_LAPTOP).signIn(ALICE.email, ALICE.password)
        expect(alice.status).toBe(303)
        clock.advance(60)
      }
    })

    it('an address that keeps guessing one account waits longer after each failure, then the right password works', async () => {
      const origin = await start()
      const max = deputy.config.loginMaxFailures
      const b = browserAt(origin, ATTACKER)
      for (let i = 1; i < max; i++)
        expect((await b.signIn(ALICE.email, `wrong ${i}`)).status).toBe(400)
      const first = await b.signIn(ALICE.email, 'wrong again')
      expect(first.status).toBe(429)
      expect(first.headers.get('retry-after')).toBe('1')
      expect(await first.text()).toContain(
        'Too many failed sign-in attempts. Try again in 1 second.',
      )
      // While the wait lasts even the right password is not checked.
      expect((await b.signIn(ALICE.email, ALICE.password)).status).toBe(429)
      const waits: string[] = []
      for (let i = 0; i < 4; i++) {
        clock.advance(Number(waits.at(-1) ?? 1))
        const r = await b.signIn(ALICE.email, `wrong later ${i}`)
        expect(r.status).toBe(429)
        waits.push(r.headers.get('retry-after') ?? '')
      }
      expect(waits).toEqual(['2', '4', '8', '16'])
      clock.advance(16)
      expect((await b.signIn(ALICE.email, ALICE.password)).status).toBe(303)
      // Success forgets the failures: the next mistake is an ordinary one again.
      const later = browserAt(origin, ATTACKER)
      expect((await later.signIn(ALICE.email, 'one more typo')).status).toBe(400)
      // The wait started once, so it was recorded once.
      const lockouts = (await auditRows()).filter((r) => r.type === 'login.locked-out')
      expect(lockouts).toHaveLength(1)
    })

    it('the wait never exceeds loginLockoutSeconds, and failures are forgotten that long after the last wait ended', async () => {
      const origin = await start({ loginMaxFailures: 2, loginLockoutSeconds: 10 })
      const b = browserAt(origin, ATTACKER)
      const waits: string[] = []
      for (let i = 0; i < 8; i++) {
        const r = await b.signIn(ALICE.email, `wrong ${i}`)
        waits.push(r.headers.get('retry-after') ?? '-')
        clock.advance(Number(r.headers.get('retry-after') ?? 0))
      }
      expect(waits).toEqual(['-', '1', '2', '4', '8', '10', '10', '10'])
      // Right when a wait ends the failures still count: the cap holds for a patient attacker.
      expect(
        (await b.signIn(ALICE.email, 'wrong at the end of the wait')).headers.get('retry-after'),
      ).toBe('10')
      clock.advance(20)
      expect((await b.signIn(ALICE.email, 'wrong after a pause')).status).toBe(400)
    })

    it('concurrent guesses from one address get no more password checks than loginMaxFailures', async () => {
      const origin = await start()
      const b = browserAt(origin, ATTACKER)
      const csrf = await b.openLogin()
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => b.postLogin(csrf, ALICE.email, `parallel ${i}`)),
      )
      const statuses = responses.map((r) => r.status)
      expect(statuses.filter((s) => s === 400)).toHaveLength(deputy.config.loginMaxFailures - 1)
      expect(statuses.filter((s) => s === 429)).toHaveLength(
        20 - deputy.config.loginMaxFailures + 1,
      )
      const checked = (await auditRows()).filter(
        (r) => r.type === 'login.failed' && r.reason === 'wrong-password',
      )
      expect(checked).toHaveLength(deputy.config.loginMaxFailures)
    })

    it('one address guessing across many accounts is slowed by the per-address limit; other addresses are not', async () => {
      const origin = await start({ loginMaxFailuresPerAddress: 6 })
      const sprayer = browserAt(origin, ATTACKER)
      const statuses: number[] = []
      for (let i = 1; i <= 6; i++) {
        statuses.push((await sprayer.signIn(`user${i}@example.com`, 'Summer2026!')).status)
      }
      expect(statuses).toEqual([400, 400, 400, 400, 400, 429])
      // The right password of an account the sprayer never tried is not checked from there now...
      expect((await sprayer.signIn(ALICE.email, ALICE.password)).status).toBe(429)
      // ...but from anywhere else it is.
      expect(
        (await browserAt(origin, ALICE_LAPTOP).signIn(ALICE.email, ALICE.password)).status,
      ).toBe(303)
    })

    it('behind a trusted proxy each client is throttled on its own X-Forwarded-For address; from anyone else the header is ignored', async () => {
      const origin = await start({ trustedProxies: [PROXY] })
      const max = deputy.config.loginMaxFailures
      const viaProxy = (client: string) =>
        browserAt(origin, PROXY, { 'x-forwarded-for': `${client}, ${PROXY}` })
      const attacker = viaProxy('203.0.113.5')
      for (let i = 1; i <= max; i++) await attacker.signIn(ALICE.email, `guess ${i}`)
      expect((await attacker.signIn(ALICE.email, ALICE.password)).status).toBe(429)
      // Another person behind the same proxy signs in.
      expect((await viaProxy('203.0.113.6').signIn(ALICE.email, ALICE.password)).status).toBe(303)

      // A client that is not a trusted proxy cannot pick a fresh address per attempt.
      const spoofer = browserAt(origin, ATTACKER)
      for (let i = 1; i <= max; i++) {
        const csrf = await spoofer.openLogin()
        await spoofer.request('/login', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'x-forwarded-for': `198.51.100.${i}`,
          },
          body: new URLSearchParams({
            csrf_token: csrf,
            email: ALICE.email,
            password: `g${i}`,
          }).toString(),
        })
      }
      expect((await spoofer.signIn(ALICE.email, ALICE.password)).status).toBe(429)

      const where = (await auditRows())
        .filter((r) => r.type === 'login.succeeded')
        .map((r) => JSON.parse(r.data).address)
      expect(where).toEqual(['203.0.113.6'])
    })

    it('a typed email that matches no account is stored only as a digest, in the audit chain and the throttle table', async () => {
      const origin = await start()
      const b = browserAt(origin, ATTACKER)
      // People type their password into the email field; it must not land in the log readable.
      for (let i = 0; i < deputy.config.loginMaxFailures + 2; i++) {
        await b.signIn('Hunter2-Secret@Example.com', 'whatever it is')
      }
      const rows = await auditRows()
      const failed = rows.filter((r) => r.type === 'login.failed')
      expect(failed.length).toBeGreaterThan(0)
      expect(rows.some((r) => r.type === 'login.locked-out')).toBe(true)
      const everything = JSON.stringify(rows).toLowerCase()
      expect(everything).not.toContain('hunter2-secret')
      const digests = failed.map((r) => JSON.parse(r.data).email as string)
      expect(new Set(digests).size).toBe(1)
      expect(digests[0]).toMatch(/^hmac-sha-256:[0-9a-f]{64}$/)
      expect(failed.map((r) => JSON.parse(r.actor).label)).toEqual(digests)

      const keys = await deputy.deps.db.selectFrom('login_throttle').select('key').execute()
      expect(keys.length).toBeGreaterThan(0)
      expect(JSON.stringify(keys).toLowerCase()).not.toContain('hunter2-secret')
    })

    it('an account that exists and one that does not are throttled the same, so throttling does not reveal which accounts exist', async () => {
      const origin = await start()
      const run = async (email: string) => {
        const b = browserAt(origin, ATTACKER)
        const seen: string[] = []
        for (let i = 0; i < 8; i++) {
          const r = await b.signIn(email, `guess ${i}`)
          seen.push(`${r.status}/${r.headers.get('retry-after') ?? '-'}`)
          if (i % 3 === 2) clock.advance(1)
        }
        return seen
      }
      const known = await run(ALICE.email)
      clock.advance(3600)
      const unknown = await run('nobody@example.com')
      expect(unknown).toEqual(known)
    })
  })
}
