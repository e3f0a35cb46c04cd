import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Provider, ProviderError } from '../../src/providers/types.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const operator = { type: 'user' as const, id: 'operator' }
const redirectUri = 'http://localhost:8080/connect/slack/callback'

function read(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = ''
    req.on('data', (c: Buffer) => {
      body += c.toString()
    })
    req.on('end', () => resolve(body))
  })
}

/**
 * Slack's OAuth v2 shapes, as documented: a person's own token under `authed_user` (no top-level
 * access_token when only user scopes were asked for), comma-separated scopes, errors as HTTP 200
 * with `ok: false`, users.identity and auth.revoke with the user token.
 */
describe('providers: Slack OAuth v2 (issue 12 §1)', () => {
  let server: Server
  let base: string
  let deputy: TestDeputy
  let slack: Provider
  const revoked = new Set<string>()

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      const body = await read(req)
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
      res.setHeader('content-type', 'application/json')
      if (url.pathname === '/api/oauth.v2.access') {
        const form = new URLSearchParams(body)
        if (form.get('code') !== 'good-code' || !form.get('code_verifier'))
          return res.end(JSON.stringify({ ok: false, error: 'invalid_code' }))
        return res.end(
          JSON.stringify({
            ok: true,
            app_id: 'A1',
            authed_user: {
              id: 'U1',
              scope: 'identity.basic,identity.email',
              access_token: 'xoxp-user-token',
              token_type: 'user',
            },
            team: { id: 'T1' },
          }),
        )
      }
      if (url.pathname === '/api/users.identity') {
        if (token !== 'xoxp-user-token' || revoked.has(token))
          return res.end(JSON.stringify({ ok: false, error: 'invalid_auth' }))
        return res.end(
          JSON.stringify({
            ok: true,
            user: { id: 'U1', name: 'Sam', email: 'sam@example.com' },
            team: { id: 'T1' },
          }),
        )
      }
      if (url.pathname === '/api/auth.revoke') {
        revoked.add(token)
        return res.end(JSON.stringify({ ok: true, revoked: true }))
      }
      res.statusCode = 404
      return res.end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    deputy = await startTestDeputy({ config: { dangerouslyAllowHttpLoopbackProviders: true } })
    slack = await deputy.deps.providers.add(
      {
        name: 'slack',
        type: 'slack',
        clientId: '123.456',
        clientSecret: 'slack-secret',
        endpoints: {
          authorization_endpoint: `${base}/oauth/v2/authorize`,
          token_endpoint: `${base}/api/oauth.v2.access`,
          user_api: `${base}/api/users.identity`,
          revocation_endpoint: `${base}/api/auth.revoke`,
        },
      },
      operator,
    )
  })
  afterAll(async () => {
    await deputy?.dispose()
    await new Promise((resolve) => server?.close(resolve))
  })

  it('asks for the person’s scopes as user_scope, redeems the authed_user token, and names team:user', async () => {
    const url = await deputy.deps.providers.authorizationUrl(slack, {
      redirectUri,
      state: 's1',
      codeVerifier: 'v'.repeat(43),
      nonce: 'n',
      scopes: slack.scopes,
    })
    expect(url.searchParams.get('user_scope')).toBe('identity.basic identity.email')
    expect(url.searchParams.has('scope')).toBe(false)
    const tokens = await deputy.deps.providers.redeemCallback(slack, {
      currentUrl: new URL(`${redirectUri}?code=good-code&state=s1`),
      redirectUri,
      expectedState: 's1',
      codeVerifier: 'v'.repeat(43),
      nonce: 'n',
    })
    expect(tokens.accessToken).toBe('xoxp-user-token')
    expect(tokens.scopes).toEqual(['identity.basic', 'identity.email'])
    const profile = await deputy.deps.providers.profile(slack, tokens)
    expect(profile).toMatchObject({
      subject: 'T1:U1',
      email: 'sam@example.com',
      claims: { slack_user_id: 'U1', slack_team_id: 'T1' },
    })
    expect(await deputy.deps.providers.revoke(slack, tokens)).toBe(true)
    await expect(deputy.deps.providers.profile(slack, tokens)).rejects.toBeInstanceOf(ProviderError)
  })

  it('Slack’s ok:false on a bad code is ProviderError, not a token', async () => {
    const err = await deputy.deps.providers
      .redeemCallback(slack, {
        currentUrl: new URL(`${redirectUri}?code=bad&state=s2`),
        redirectUri,
        expectedState: 's2',
        codeVerifier: 'v'.repeat(43),
        nonce: 'n',
      })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProviderError)
    expect((err as ProviderError).code).toBe('invalid_code')
  })
})
