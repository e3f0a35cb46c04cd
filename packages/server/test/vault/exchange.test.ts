import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../src/identity/users.js'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { type Client, TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import type { Resource } from '../../src/oauth/resources.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import {
  connectThroughLink,
  PROVIDER,
  SYSTEM,
  startVaultFixture,
  type VaultFixture,
} from './vault-fixture.js'

// Issue 12 §5: the exchange's answers that come from the vault, over /token, against a real
// local OpenID provider and the stand-in API that trusts its tokens: no connection is
// connection_required with the connect link; after the person follows it the answer is the
// upstream access token only (never the refresh token), which the API accepts; more scopes than
// the connection has is connection_required again; each exchange is audited.

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const CONNECTION_TOKEN_TYPE = 'urn:deputy:params:oauth:token-type:connection-access-token'
const RESOURCE = 'http://127.0.0.1:9/mcp'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `token exchange for a connected account's token (issue 12 §5) on ${dialect.name}`,
    () => {
      let f: VaultFixture
      let alice: User
      let resource: Resource
      let agent: Client
      let mcp: { client: Client; basic: string }
      let subjectToken: string

      beforeAll(async () => {
        f = await startVaultFixture({ database: await dialect.create() })
        const { deps } = f.deputy
        resource = await deps.resources.put({ uri: RESOURCE, scopes: { read: 'Read' } }, SYSTEM)
        agent = (
          await deps.clients.register(
            { name: 'Agent', redirectUris: ['http://127.0.0.1:7/callback'] },
            SYSTEM,
          )
        ).client
        const created = await deps.clients.register(
          {
            name: 'MCP server',
            grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE],
            allowedResources: [RESOURCE],
          },
          SYSTEM,
        )
        mcp = {
          client: created.client,
          basic: `Basic ${btoa(`${created.client.clientId}:${created.clientSecret}`)}`,
        }
        await deps.providers.update(PROVIDER, { allowedClients: [created.client.clientId] }, SYSTEM)
        alice = (await deps.users.findById(f.aliceId)) as User
        subjectToken = (
          await mintAccessToken(deps, {
            client: agent,
            user: alice,
            resource,
            scopes: ['read'],
            grantId: null,
          })
        ).token
      }, 60_000)

      afterAll(async () => {
        await f?.close()
      })

      async function exchange(scope?: string) {
        const response = await f.deputy.app.request('/token', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: mcp.basic,
          },
          body: new URLSearchParams({
            grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
            subject_token: subjectToken,
            subject_token_type: ACCESS_TOKEN_TYPE,
            requested_token_type: CONNECTION_TOKEN_TYPE,
            connection: PROVIDER,
            ...(scope !== undefined && { scope }),
          }).toString(),
        })
        expect(response.headers.get('cache-control')).toBe('no-store')
        return { status: response.status, body: (await response.json()) as Record<string, string> }
      }

      it('no connection yet: connection_required with the connect link (Deputy’s extension)', async () => {
        const { status, body } = await exchange()
        expect(status).toBe(400)
        expect(body.error).toBe('connection_required')
        expect(body.error_description).toMatch(/connect/)
        expect(body.connection).toBe(PROVIDER)
        const link = new URL(body.connect_uri as string)
        expect(`${link.origin}${link.pathname}`).toBe(
          `${f.deputy.config.issuer}/connect/${PROVIDER}`,
        )
        expect(link.searchParams.get('scope')?.split(' ')).toEqual(
          expect.arrayContaining(['openid', 'email']),
        )
        expect(body.access_token).toBeUndefined()
      })

      it('after connecting: the upstream access token only (RFC 8693 §2.2.1), which the API accepts', async () => {
        const { body: refused } = await exchange()
        const link = new URL(refused.connect_uri as string)
        const back = await connectThroughLink(f.browser, `${link.pathname}${link.search}`)
        expect(back.status).toBe(303)
        const { status, body } = await exchange()
        expect(status).toBe(200)
        expect(Object.keys(body).sort()).toEqual(
          ['access_token', 'expires_in', 'issued_token_type', 'scope', 'token_type'].sort(),
        )
        expect(body.issued_token_type).toBe(CONNECTION_TOKEN_TYPE)
        expect(body.token_type).toBe('Bearer')
        expect(Number(body.expires_in)).toBeGreaterThan(0)
        expect(body.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email']))
        expect(body.refresh_token).toBeUndefined()
        // Of every token value the provider issued to Alice, only the access token is in the answer.
        const issued = f.upstream.tokenValues('alice-sub')
        const text = JSON.stringify(body)
        const leaked = issued.filter((value) => value !== body.access_token && text.includes(value))
        expect(leaked).toEqual([])
        const me = await fetch(`${f.api.url}/me`, {
          headers: { authorization: `Bearer ${body.access_token}` },
        })
        expect(me.status).toBe(200)
        expect(((await me.json()) as { sub: string }).sub).toBe('alice-sub')
      })

      it('a narrower scope is served; a wider one is connection_required with the link asking for it', async () => {
        const narrower = await exchange('openid')
        expect(narrower.status).toBe(200)
        const wider = await exchange('openid email profile')
        expect(wider.status).toBe(400)
        expect(wider.body.error).toBe('connection_required')
        const link = new URL(wider.body.connect_uri as string)
        expect(link.searchParams.get('scope')?.split(' ')).toContain('profile')
      })

      it('each exchange is audited as token.exchanged: person, agent, MCP server, provider; no token', async () => {
        const rows = await f.deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', 'token.exchanged')
          .execute()
        expect(rows.length).toBeGreaterThanOrEqual(2)
        const [row] = rows
        const text = JSON.stringify(rows)
        expect(text).toContain(mcp.client.clientId)
        expect(text).toContain(agent.clientId)
        expect(text).toContain(f.aliceId)
        expect(text).toContain(PROVIDER)
        expect(text).not.toContain(subjectToken)
        for (const value of f.upstream.tokenValues('alice-sub')) expect(text).not.toContain(value)
        expect(row).toBeDefined()
      })
    },
  )
}
