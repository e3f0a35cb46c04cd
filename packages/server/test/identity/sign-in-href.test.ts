import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_RETURN_TO_LENGTH, safeReturnTo, signInHref } from '../../src/identity/return-to.js'
import { listen, type RunningServer } from '../../src/server.js'
import { createSqliteDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

describe('signInHref: where a page sends a visitor to sign in', () => {
  it('carries the page to come back to, percent-encoded, and nothing for the default', () => {
    expect(signInHref('/admin/people?q=ada')).toBe(
      `/login?return_to=${encodeURIComponent('/admin/people?q=ada')}`,
    )
    expect(signInHref('/account')).toBe('/login')
    expect(signInHref('/approvals/abc', { fresh: true })).toBe(
      '/login?fresh&return_to=%2Fapprovals%2Fabc',
    )
    expect(signInHref('/account', { fresh: true })).toBe('/login?fresh')
  })

  it('drops a query too long for sign-in to follow, keeping the path; drops a path too long', () => {
    const long = `/admin/people?q=${'%'.repeat(MAX_RETURN_TO_LENGTH)}`
    // Sign-in would refuse it anyway: carrying it only makes the answer bigger.
    expect(safeReturnTo(long)).toBe('/account')
    expect(signInHref(long)).toBe('/login?return_to=%2Fadmin%2Fpeople')
    expect(signInHref(`/${'a'.repeat(MAX_RETURN_TO_LENGTH)}?x=1`)).toBe('/login')
    expect(signInHref(`/${'a'.repeat(MAX_RETURN_TO_LENGTH)}`)).toBe('/login')
    // At the bound it is still carried, and sign-in still follows it.
    const atBound = `/admin?q=${'x'.repeat(MAX_RETURN_TO_LENGTH - 9)}`
    expect(atBound.length).toBe(MAX_RETURN_TO_LENGTH)
    expect(signInHref(atBound)).toBe(`/login?return_to=${encodeURIComponent(atBound)}`)
    expect(safeReturnTo(atBound)).toBe(atBound)
  })
})

// Found by the route fuzzer (FUZZ_SEED=1203): a 6 KB query of `%` on a page behind sign-in came
// back in Location three times as long, and clients refused the answer (undici: headers overflow).
describe('pages behind sign-in, asked with a long query over a real socket', () => {
  let deputy: TestDeputy
  let server: RunningServer
  beforeAll(async () => {
    deputy = await startTestDeputy({ database: await createSqliteDatabase() })
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
  })
  afterAll(async () => {
    await server?.shutdown()
    await deputy?.dispose()
  })

  for (const path of ['/admin', '/admin/people', '/connect/github']) {
    it(`${path}: a readable redirect to sign-in, coming back to the page without the query`, async () => {
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(`${server.url}${path}?x=${'%'.repeat(6000)}`, {
          method,
          redirect: 'manual',
        })
        await res.text()
        expect(res.status, method).toBe(303)
        expect(res.headers.get('location'), method).toBe(
          `/login?return_to=${encodeURIComponent(path)}`,
        )
      }
    })
  }
})
