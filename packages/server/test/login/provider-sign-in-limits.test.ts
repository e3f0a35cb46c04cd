import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PROVIDER_SIGN_IN_COOKIE } from '../../src/providers/sign-in-routes.js'
import { browserAt, requestFrom } from '../helpers/loopback.js'
import { parseForms } from '../helpers/sign-in.js'
import { PROVIDER, SYSTEM, startVaultFixture, type VaultFixture } from '../vault/vault-fixture.js'

// Review finding (issue 14 §4): starting a sign-in with a provider (`GET /login/<provider>`) and
// starting a connection (`POST /connect/<provider>`) each store a redirect row for ten minutes,
// for anyone who asks; and a callback with `error=access_denied` for a flow the caller started
// themselves wrote a full `login.failed` record every time. Now: a per-address limit on the
// first, a per-person limit on the second, and such callbacks summarised like made-up states.

const SIGN_IN = 'corpsso'

describe('anonymous provider sign-in starts and callbacks cost bounded rows and records', () => {
  let f: VaultFixture

  beforeAll(async () => {
    f = await startVaultFixture({
      config: { signInRateLimit: 5, connectRateLimit: 3, auditRefusalSummarySeconds: 3600 },
    })
    const corp = await f.deputy.deps.providers.get(PROVIDER)
    if (!corp) throw new Error('no provider')
    await f.deputy.deps.providers.add(
      {
        name: SIGN_IN,
        type: 'oidc',
        displayName: 'Corp SSO',
        clientId: f.upstream.clientId,
        clientSecret: f.upstream.clientSecret,
        issuer: f.upstream.issuer,
        uses: ['sign-in'],
        scopes: ['openid', 'email'],
      },
      SYSTEM,
    )
  })
  afterAll(() => f.close())

  const flows = async (kind: 'sign-in' | 'connect') =>
    Number(
      (
        await f.deputy.deps.db
          .selectFrom('provider_flows')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('kind', '=', kind)
          .executeTakeFirstOrThrow()
      ).n,
    )
  const loginFailed = async () =>
    (
      await f.deputy.deps.db
        .selectFrom('audit_events')
        .select(['reason', 'data'])
        .where('type', '=', 'login.failed')
        .execute()
    ).map((row) => ({ reason: row.reason, data: JSON.parse(row.data) as Record<string, unknown> }))

  it('GET /login/<provider> past the per-address limit is 429 with Retry-After, and stores no further redirect', async () => {
    const before = await flows('sign-in')
    const statuses: number[] = []
    for (let i = 0; i < 8; i++)
      statuses.push((await requestFrom('127.0.0.9', `${f.server.url}/login/${SIGN_IN}`)).status)
    expect(statuses).toEqual([303, 303, 303, 303, 303, 429, 429, 429])
    const refused = await requestFrom('127.0.0.9', `${f.server.url}/login/${SIGN_IN}`)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await refused.text()).toContain('Too many sign-in attempts came from your network')
    expect((await flows('sign-in')) - before).toBe(5)
    // Another address is not held back.
    expect((await requestFrom('127.0.0.10', `${f.server.url}/login/${SIGN_IN}`)).status).toBe(303)
  })

  it('POST /login past the per-address limit is 429 with Retry-After, and the attempt is neither checked nor recorded', async () => {
    await f.deputy.deps.refusals.flush()
    const before = (await loginFailed()).length
    const b = browserAt(f.server.url, '127.0.0.12')
    const csrf = await b.openLogin()
    const statuses: number[] = []
    let last: Response | undefined
    for (let i = 0; i < 7; i++) {
      last = await b.postLogin(csrf, `guess${i}@example.com`, 'not the password')
      statuses.push(last.status)
    }
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429, 429])
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await last?.text()).toContain('Too many sign-in attempts came from your network')
    // The five checked attempts are recorded (in full or counted in a summary); the two refused
    // by the limit left nothing.
    await f.deputy.deps.refusals.flush()
    const counted = (await loginFailed())
      .slice(before)
      .reduce((sum, r) => sum + (typeof r.data.count === 'number' ? r.data.count : 1), 0)
    expect(counted).toBe(5)
  })

  it('callbacks with error=access_denied for flows the caller started are summarised: two records, not one each', async () => {
    await f.deputy.deps.refusals.flush()
    const before = (await loginFailed()).length
    for (let i = 0; i < 4; i++) {
      const start = await requestFrom('127.0.0.11', `${f.server.url}/login/${SIGN_IN}`)
      expect(start.status).toBe(303)
      const state = new URL(start.headers.get('location') as string).searchParams.get('state')
      const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] as string
      expect(cookie.startsWith(`${PROVIDER_SIGN_IN_COOKIE}=`)).toBe(true)
      const back = await requestFrom(
        '127.0.0.11',
        `${f.server.url}/login/${SIGN_IN}/callback?${new URLSearchParams({
          error: 'access_denied',
          state: state as string,
          iss: f.upstream.issuer,
        })}`,
        { headers: { cookie } },
      )
      expect(back.status).toBe(403)
      expect(await back.text()).toContain('You did not allow the sign-in at Corp SSO')
    }
    await f.deputy.deps.refusals.flush()
    const records = (await loginFailed()).slice(before)
    // The first in full, the other three as one summary with their count.
    expect(records).toHaveLength(2)
    expect(records.map((r) => r.reason)).toEqual(['provider-error', 'provider-error'])
    expect(records[0]?.data).toMatchObject({ provider: SIGN_IN, code: 'access_denied' })
    expect(records[1]?.data).toMatchObject({ count: 3 })
  })

  it('POST /connect/<provider> past the per-person limit is 429 with Retry-After, and stores no further redirect', async () => {
    const page = await f.browser.get(`/connect/${PROVIDER}`)
    expect(page.status).toBe(200)
    const form = parseForms(await page.text()).find((x) => x.action.startsWith('/connect/'))
    if (!form) throw new Error('no connect form')
    const statuses: number[] = []
    for (let i = 0; i < 5; i++)
      statuses.push((await f.browser.post(form.action, Object.fromEntries(form.fields))).status)
    expect(statuses).toEqual([303, 303, 303, 429, 429])
    const refused = await f.browser.post(form.action, Object.fromEntries(form.fields))
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await refused.text()).toContain('You started many connections in a short time')
    expect(await flows('connect')).toBe(3)
  })
})
