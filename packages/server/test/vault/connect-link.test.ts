import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertClient } from '../oauth/authorize-fixture.js'
import {
  connectThroughLink,
  PROVIDER,
  startVaultFixture,
  type VaultFixture,
} from './vault-fixture.js'

// Issue 12 §3: a connect link an agent or MCP server hands the person,
// `/connect/<provider>?scope=…&return_to=…`, with `return_to` checked against the requesting
// client's registered URIs. Anything else is refused with a page, never followed.

const AGENT_CALLBACK = 'https://agent.example/connected'

describe('connect links: return_to and scope checks', () => {
  let f: VaultFixture
  beforeAll(async () => {
    f = await startVaultFixture({ upstream: { accessTokenTtl: 600 } })
    await insertClient(f.deputy, {
      clientId: 'agent-1',
      name: 'Research Agent',
      kind: 'registered',
      redirectUris: [AGENT_CALLBACK],
    })
  })
  afterAll(async () => {
    await f?.close()
  })

  const link = (params: Record<string, string>) =>
    `/connect/${PROVIDER}?${new URLSearchParams(params).toString()}`

  it('a foreign return_to is refused with a page, before anything reaches the provider', async () => {
    const authorizations = f.upstream.counts.authorization
    const cases: Record<string, string>[] = [
      { return_to: 'https://evil.example/steal' },
      { return_to: 'https://evil.example/steal', client_id: 'agent-1' },
      { return_to: `${AGENT_CALLBACK}/more`, client_id: 'agent-1' },
      { return_to: AGENT_CALLBACK, client_id: 'no-such-agent' },
      { return_to: '//evil.example/x' },
      { return_to: '/.//evil.example/x' },
      { return_to: 'javascript:alert(1)', client_id: 'agent-1' },
    ]
    for (const params of cases) {
      const page = await f.browser.get(link(params))
      expect(page.status, JSON.stringify(params)).toBe(400)
      expect(await page.text()).toContain('Cannot connect')
      // The form post is checked the same way (a page could be skipped).
      const { connectionsCsrf } = await import('./vault-fixture.js')
      const posted = await f.browser.post(`/connect/${PROVIDER}`, {
        csrf_token: await connectionsCsrf(f.browser),
        ...params,
      })
      expect(posted.status, JSON.stringify(params)).toBe(400)
    }
    expect(f.upstream.counts.authorization).toBe(authorizations)
  })

  it("a return_to equal to the client's registered redirect URI is followed after connecting", async () => {
    const page = await f.browser.get(
      link({ scope: 'profile', return_to: AGENT_CALLBACK, client_id: 'agent-1' }),
    )
    expect(await page.text()).toContain('Research Agent asks you to connect your Corp account')
    const back = await connectThroughLink(
      f.browser,
      link({ scope: 'profile', return_to: AGENT_CALLBACK, client_id: 'agent-1' }),
    )
    expect(back.status).toBe(303)
    expect(back.headers.get('location')).toBe(AGENT_CALLBACK)
    const connection = await f.deputy.deps.vault.get(f.aliceId, PROVIDER)
    expect(connection?.scopes).toEqual(expect.arrayContaining(['openid', 'email', 'profile']))
    // The scope asked for is now held: no connection_required for it.
    const token = await f.deputy.deps.vault.accessToken(f.aliceId, PROVIDER, {
      scopes: ['profile'],
    })
    expect(token.scopes).toContain('profile')
  })

  it('a path on Deputy is accepted as return_to', async () => {
    const back = await connectThroughLink(f.browser, link({ return_to: '/account' }))
    expect(back.status).toBe(303)
    expect(back.headers.get('location')).toBe('/account')
  })

  it('an invalid scope, an unknown provider and a replayed callback are refused', async () => {
    expect((await f.browser.get(link({ scope: 'a"b' }))).status).toBe(400)
    expect((await f.browser.get('/connect/nope')).status).toBe(404)
    const replay = await f.browser.get(`/connect/${PROVIDER}/callback?state=made-up&code=x`)
    expect(replay.status).toBe(400)
  })

  it('starting a connection needs the session CSRF token (nothing starts on a GET)', async () => {
    const authorizations = f.upstream.counts.authorization
    const posted = await f.browser.post(`/connect/${PROVIDER}`, { csrf_token: 'forged' })
    expect(posted.status).toBe(403)
    expect(f.upstream.counts.authorization).toBe(authorizations)
  })
})
