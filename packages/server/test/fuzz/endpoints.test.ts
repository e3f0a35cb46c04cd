import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type FuzzTarget,
  findingsOf,
  fuzzSettings,
  oauthCodeFinding,
  sendAndCheck,
  startFuzzTarget,
} from './fixture.js'
import { mutatedArb, scenarios, unbroken } from './scenarios.js'

// Issue 14 §3, deeper: every OAuth endpoint and grant type, the sign-in form and the admin API,
// each from a request that would succeed with a few of its parts broken (scenarios.ts). No 5xx,
// no hang, no stack trace; the OAuth endpoints' JSON errors carry OAuth error codes.

let target: FuzzTarget

beforeAll(async () => {
  target = await startFuzzTarget()
})
afterAll(() => target?.stop())

describe('nearly valid requests, broken a little (issue 14 §3)', () => {
  it('the unbroken scenarios get past parsing', async () => {
    // A scenario whose base request is refused at the door would fuzz nothing behind it.
    const answers: Record<string, number> = {}
    for (const s of scenarios(target)) {
      const answer = await sendAndCheck(target, unbroken(s))
      answers[s.name] = answer.status
    }
    expect(answers).toMatchObject({
      'POST /token client_credentials': 200,
      'POST /token refresh_token': 200,
      'POST /introspect': 200,
      'POST /revoke': 200,
      'POST /register': 201,
      'POST /bc-authorize': 200,
      'GET /userinfo': 200,
      'POST /admin/api/clients': 201,
      'POST /admin/api/users': 201,
      'POST /admin/api/policies': 201,
      'POST /admin/api/policy/explain': 200,
      'POST /admin/api/relations': 200,
      'POST /admin/people (console form)': 303,
    })
  })

  for (const name of scenarioNames()) {
    it(`${name}: no 5xx, hang or stack trace`, async () => {
      const s = scenarios(target).find((x) => x.name === name)
      if (!s) throw new Error(`no scenario ${name}`)
      const findings = await findingsOf(
        mutatedArb(target, s),
        async (request) => {
          const answer = await sendAndCheck(target, request)
          return answer.finding ?? (s.oauth ? oauthCodeFinding(answer) : undefined)
        },
        fuzzSettings(60),
      )
      expect(findings, findings.join('\n\n')).toEqual([])
    })
  }
})

/** The scenario names, known before the target starts (the test names are fixed at collection). */
function scenarioNames(): string[] {
  return [
    'POST /token client_credentials',
    'POST /token authorization_code',
    'POST /token refresh_token',
    'POST /token token-exchange',
    'POST /token jwt-bearer',
    'POST /token ciba',
    'POST /token private_key_jwt',
    'POST /introspect',
    'POST /revoke',
    'POST /register',
    'POST /bc-authorize',
    'GET /authorize',
    'GET /userinfo',
    'POST /login',
    'POST /admin/api/clients',
    'POST /admin/api/users',
    'POST /admin/api/policies',
    'POST /admin/api/policy/explain',
    'POST /admin/api/relations',
    'POST /admin/people (console form)',
  ]
}
