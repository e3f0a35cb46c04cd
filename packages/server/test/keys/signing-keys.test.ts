import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createLocalJWKSet, type JWK, jwtVerify, SignJWT } from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import { openDeputy } from '../../src/deputy.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import type { Clock } from '../../src/lib/clock.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy, testConfig } from '../helpers/deputy.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/first-key.mjs', import.meta.url))

/** A clock the test moves by hand. */
function manualClock(start = Date.now()): Clock & { set(ms: number): void } {
  let now = start
  return { now: () => new Date(now), set: (ms) => (now = ms) }
}

async function jwksOf(deputy: TestDeputy): Promise<{ keys: JWK[] }> {
  const res = await deputy.app.request('/jwks')
  expect(res.status).toBe(200)
  return (await res.json()) as { keys: JWK[] }
}

async function signWithActive(deputy: TestDeputy, clock: Clock): Promise<string> {
  const key = await deputy.deps.signingKeys.active()
  const iat = Math.floor(clock.now().getTime() / 1000)
  return new SignJWT({ sub: 'user-1' })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + deputy.config.accessTokenTtlSeconds)
    .sign(key.privateKey)
}

/** Verifies a token the way a resource server does: against the published JWKS only. */
async function verifyAgainstJwks(deputy: TestDeputy, token: string, clock: Clock) {
  const jwks = createLocalJWKSet(await jwksOf(deputy))
  return jwtVerify(token, jwks, { currentDate: clock.now() })
}

async function auditEvents(deputy: TestDeputy, type: string) {
  const rows = await deputy.deps.db
    .selectFrom('audit_events')
    .select(['actor', 'target', 'data'])
    .where('type', '=', type)
    .orderBy('seq')
    .execute()
  return rows.map((r) => ({
    actor: JSON.parse(r.actor),
    target: r.target ? JSON.parse(r.target) : null,
    data: JSON.parse(r.data),
  }))
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`signing keys (${dialect.name})`, () => {
    let deputy: TestDeputy | undefined
    afterEach(async () => {
      await deputy?.dispose()
      deputy = undefined
    })

    async function start(clock: Clock, config = {}): Promise<TestDeputy> {
      deputy = await startTestDeputy({ database: await dialect.create(), clock, config })
      return deputy
    }

    it('creates an ES256 key on first start, publishes it and records signing-key.created', async () => {
      const clock = manualClock()
      const d = await start(clock)
      const { keys } = await jwksOf(d)
      expect(keys).toHaveLength(1)
      expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
      expect(keys[0]).not.toHaveProperty('d')

      const token = await signWithActive(d, clock)
      const { protectedHeader, payload } = await verifyAgainstJwks(d, token, clock)
      expect(protectedHeader.kid).toBe(keys[0]?.kid)
      expect(payload.sub).toBe('user-1')

      expect(await auditEvents(d, 'signing-key.created')).toEqual([
        {
          actor: { type: 'system', id: 'deputy' },
          target: { type: 'signing_key', id: keys[0]?.kid },
          data: { kid: keys[0]?.kid, alg: 'ES256' },
        },
      ])
    })

    it('uses EdDSA (Ed25519) when configured', async () => {
      const clock = manualClock()
      const d = await start(clock, { signingAlg: 'EdDSA' })
      const { keys } = await jwksOf(d)
      expect(keys).toHaveLength(1)
      expect(keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' })
      expect(keys[0]).not.toHaveProperty('d')
      const { protectedHeader } = await verifyAgainstJwks(d, await signWithActive(d, clock), clock)
      expect(protectedHeader.alg).toBe('EdDSA')
    })

    it('after rotate the new key signs and the old one stays published until its last token has expired', async () => {
      const clock = manualClock()
      const d = await start(clock)
      const oldKid = (await d.deps.signingKeys.active()).kid
      const oldToken = await signWithActive(d, clock)

      const rotation = await d.deps.signingKeys.rotate({ type: 'user', id: 'admin-1' })
      expect(rotation.retired?.kid).toBe(oldKid)
      expect(rotation.active.kid).not.toBe(oldKid)
      expect((await d.deps.signingKeys.active()).kid).toBe(rotation.active.kid)

      const newToken = await signWithActive(d, clock)
      expect((await verifyAgainstJwks(d, newToken, clock)).protectedHeader.kid).toBe(
        rotation.active.kid,
      )
      expect((await verifyAgainstJwks(d, oldToken, clock)).protectedHeader.kid).toBe(oldKid)
      expect((await jwksOf(d)).keys.map((k) => k.kid)).toEqual([rotation.active.kid, oldKid])

      // Published at least until a token the old key signed just before the rotation expires.
      const publishUntil = Date.parse(rotation.retired?.publishUntil ?? '')
      const lastOldTokenExpiry = clock.now().getTime() + d.config.accessTokenTtlSeconds * 1000
      expect(publishUntil).toBeGreaterThan(lastOldTokenExpiry)

      const listed = await d.deps.signingKeys.list()
      expect(listed.map((k) => [k.kid, k.status, k.published])).toEqual([
        [rotation.active.kid, 'active', true],
        [oldKid, 'retired', true],
      ])

      expect(await auditEvents(d, 'signing-key.rotated')).toEqual([
        {
          actor: { type: 'user', id: 'admin-1' },
          target: { type: 'signing_key', id: rotation.active.kid },
          data: { kid: rotation.active.kid, alg: 'ES256', retiredKid: oldKid },
        },
      ])

      clock.set(publishUntil - 1)
      expect((await jwksOf(d)).keys.map((k) => k.kid)).toEqual([rotation.active.kid, oldKid])

      clock.set(publishUntil + 1)
      expect((await jwksOf(d)).keys.map((k) => k.kid)).toEqual([rotation.active.kid])
      await expect(
        jwtVerify(oldToken, createLocalJWKSet(await jwksOf(d)), {
          currentDate: new Date(publishUntil - 60_000),
        }),
      ).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' })
      expect((await d.deps.signingKeys.list()).map((k) => k.published)).toEqual([true, false])
      // The new key keeps signing and verifying.
      expect((await verifyAgainstJwks(d, await signWithActive(d, clock), clock)).payload.sub).toBe(
        'user-1',
      )
    })

    it('two processes creating the first key at once end with exactly one active key', async () => {
      const database: TestDatabase = await dialect.create()
      const masterKey = generateMasterKey()
      const config = testConfig(database.url, { masterKey })
      // Migrate once up front: the race under test is the key, not the schema.
      const setup = await openDeputy(config)
      await setup.close()
      try {
        const racers = [0, 1, 2].map(() =>
          spawn(process.execPath, [FIXTURE], {
            env: { ...process.env, TEST_DATABASE: database.url, TEST_MASTER_KEY: masterKey },
            stdio: ['pipe', 'pipe', 'inherit'],
          }),
        )
        const outputs = racers.map((child) => {
          let text = ''
          child.stdout.setEncoding('utf8')
          child.stdout.on('data', (chunk: string) => {
            text += chunk
          })
          const ready = new Promise<void>((resolve) => {
            child.stdout.on('data', () => {
              if (text.startsWith('ready\n')) resolve()
            })
          })
          const done = new Promise<number | null>((resolve) => child.on('close', resolve))
          return { ready, done, text: () => text }
        })
        await Promise.all(outputs.map((o) => o.ready))
        for (const child of racers) child.stdin.end('go\n')
        expect(await Promise.all(outputs.map((o) => o.done))).toEqual([0, 0, 0])
        const kids = outputs.map((o) => o.text().split('\n')[1])
        expect(new Set(kids).size).toBe(1)

        const check = await openDeputy(config)
        try {
          const rows = await check.deps.db.selectFrom('signing_keys').selectAll().execute()
          expect(rows.map((r) => [r.kid, r.status])).toEqual([[kids[0], 'active']])
          const created = await check.deps.db
            .selectFrom('audit_events')
            .select('type')
            .where('type', '=', 'signing-key.created')
            .execute()
          expect(created).toHaveLength(1)
        } finally {
          await check.close()
        }
      } finally {
        await database.dispose()
      }
    })
  })
}
