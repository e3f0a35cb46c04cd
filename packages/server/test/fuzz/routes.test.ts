import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requestArb } from './arbitraries.js'
import {
  type FuzzTarget,
  findingsOf,
  fuzzSettings,
  OAUTH_ENDPOINTS,
  oauthCodeFinding,
  sendAndCheck,
  startFuzzTarget,
} from './fixture.js'

// Issue 14 §3: every route the app serves, taken from the app itself (so a new route is fuzzed
// the day it lands), gets generated hostile requests over a real socket: odd methods, content
// types, malformed, oversized and nested bodies, duplicate parameters, long headers, bad
// Authorization, DPoP and cookies. None may answer 5xx, hang, or show a stack trace.

/** Routes that stream until the client goes away; fuzzed with a HEAD/POST mix only by the generic 404 logic. */
const STREAMS = new Set(['GET /approvals/events'])

let target: FuzzTarget

beforeAll(async () => {
  target = await startFuzzTarget()
})
afterAll(() => target?.stop())

/** Every (method, path) the app routes, without the middleware entries. */
function appRoutes(): { method: string; path: string }[] {
  const seen = new Set<string>()
  const routes: { method: string; path: string }[] = []
  for (const route of target.deputy.app.routes) {
    if (route.method === 'ALL' || route.path.includes('*')) continue
    const key = `${route.method} ${route.path}`
    if (seen.has(key) || STREAMS.has(key)) continue
    seen.add(key)
    routes.push({ method: route.method, path: route.path })
  }
  return routes
}

describe('every route under hostile input (issue 14 §3)', () => {
  it('the app has the routes this suite expects to reach', () => {
    const keys = new Set(appRoutes().map((r) => `${r.method} ${r.path}`))
    for (const expected of [
      'GET /.well-known/oauth-authorization-server',
      'GET /authorize',
      'POST /token',
      'POST /register',
      'POST /introspect',
      'POST /revoke',
      'POST /bc-authorize',
      'GET /userinfo',
      'GET /jwks',
      'POST /login',
      'GET /metrics',
    ]) {
      expect(keys, expected).toContain(expected)
    }
  })

  it('no route answers 5xx, hangs or shows a stack trace', async () => {
    const routes = appRoutes()
    const findings: string[] = []
    for (const route of routes) {
      const oauth = OAUTH_ENDPOINTS[route.path] === route.method
      const found = await findingsOf(
        requestArb(target, route),
        async (request) => {
          const answer = await sendAndCheck(target, request)
          if (answer.finding) return answer.finding
          return oauth && request.method === route.method ? oauthCodeFinding(answer) : undefined
        },
        fuzzSettings(12),
      )
      findings.push(...found.map((f) => `${route.method} ${route.path}: ${f}`))
    }
    expect(findings, findings.join('\n\n')).toEqual([])
  }, 600_000)
})
