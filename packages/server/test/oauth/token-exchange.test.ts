import { generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import type { User } from '../../src/identity/users.js'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { type Client, TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import type { Resource } from '../../src/oauth/resources.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { startUpstreamProvider, type UpstreamProvider } from '../helpers/upstream-provider.js'

// RFC 8693 token exchange, Deputy's vault profile (issue 12 §5, docs/vault.md "The exchange"):
// the refusals, each a MUST of RFC 8693 §2.1/§2.2.2 or of the profile. The answers that reach
// the vault (connection_required, the upstream token) are in test/vault/exchange.test.ts.

const ADMIN: Actor = { type: 'system', id: 'test' }
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const CONNECTION_TOKEN_TYPE = 'urn:deputy:params:oauth:token-type:connection-access-token'
const RESOURCE = 'http://127.0.0.1:9/mcp'

interface Registered {
  client: Client
  basic: string
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `token exchange, the vault profile: refusals (RFC 8693 §2.2.2) on ${dialect.name}`,
    () => {
      let deputy: TestDeputy
      let upstream: UpstreamProvider
      let alice: User
      let resource: Resource
      let agent: Registered
      /** The MCP server: allowed for the provider, registered for the resource. */
      let mcp: Registered
      /** Allowed for the provider, but serves no resource: it does not hold people's tokens. */
      let bystander: Registered
      /** Serves the resource, but the operator did not allow it for the provider. */
      let notAllowed: Registered
      /** May not use the grant at all. */
      let noGrant: Registered
      let aliceToken: string

      const register = async (
        name: string,
        input: Record<string, unknown> = {},
      ): Promise<Registered> => {
        const created = await deputy.deps.clients.register({ name, ...input }, ADMIN)
        return {
          client: created.client,
          basic: `Basic ${btoa(`${created.client.clientId}:${created.clientSecret}`)}`,
        }
      }

      beforeAll(async () => {
        upstream = await startUpstreamProvider()
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { dangerouslyAllowHttpLoopbackProviders: true },
        })
        const { deps } = deputy
        resource = await deps.resources.put(
          { uri: RESOURCE, scopes: { read: 'Read things' } },
          ADMIN,
        )
        alice = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        agent = await register('Agent', { redirectUris: ['http://127.0.0.1:7/callback'] })
        mcp = await register('MCP server', {
          grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE],
          allowedResources: [RESOURCE],
        })
        bystander = await register('Bystander', { grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE] })
        notAllowed = await register('Not allowed', {
          grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE],
          allowedResources: [RESOURCE],
        })
        noGrant = await register('No grant', {
          grantTypes: ['client_credentials'],
          allowedScopes: ['read'],
          allowedResources: [RESOURCE],
        })
        await deps.providers.add(
          upstream.providerInput({
            name: 'acme',
            uses: ['connect'],
            allowedClients: [
              mcp.client.clientId,
              bystander.client.clientId,
              noGrant.client.clientId,
            ],
          }),
          ADMIN,
        )
        aliceToken = await personToken()
      }, 60_000)

      afterAll(async () => {
        await deputy?.dispose()
        await upstream?.close()
      })

      /** Alice's access token for the agent at the MCP server, as /token would mint it. */
      async function personToken(deps = deputy.deps): Promise<string> {
        const minted = await mintAccessToken(deps, {
          client: agent.client,
          user: alice,
          resource,
          scopes: ['read'],
          grantId: null,
        })
        return minted.token
      }

      function exchangeForm(overrides: Record<string, string | null> = {}): URLSearchParams {
        const fields: Record<string, string | null> = {
          grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
          subject_token: aliceToken,
          subject_token_type: ACCESS_TOKEN_TYPE,
          requested_token_type: CONNECTION_TOKEN_TYPE,
          connection: 'acme',
          ...overrides,
        }
        const form = new URLSearchParams()
        for (const [name, value] of Object.entries(fields))
          if (value !== null) form.set(name, value)
        return form
      }

      async function exchange(
        form: URLSearchParams,
        as: Registered | null = mcp,
      ): Promise<{ status: number; body: Record<string, unknown> }> {
        const response = await deputy.app.request('/token', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            ...(as !== null && { authorization: as.basic }),
          },
          body: form.toString(),
        })
        expect(response.headers.get('cache-control')).toBe('no-store')
        return { status: response.status, body: (await response.json()) as Record<string, unknown> }
      }

      async function expectRefused(
        form: URLSearchParams,
        error: string,
        as: Registered | null = mcp,
      ): Promise<Record<string, unknown>> {
        const { status, body } = await exchange(form, as)
        expect(body.error).toBe(error)
        expect(status).toBe(error === 'invalid_client' ? 401 : 400)
        expect(body.access_token).toBeUndefined()
        return body
      }

      it('is advertised in the metadata (RFC 8414 grant_types_supported)', async () => {
        const response = await deputy.app.request('/.well-known/oauth-authorization-server')
        const doc = (await response.json()) as { grant_types_supported: string[] }
        expect(doc.grant_types_supported).toContain(TOKEN_EXCHANGE_GRANT_TYPE)
      })

      it('§2.1: subject_token is required', async () => {
        const body = await expectRefused(exchangeForm({ subject_token: null }), 'invalid_request')
        expect(body.error_description).toMatch(/subject_token/)
      })

      it('§2.1: subject_token_type is required', async () => {
        await expectRefused(exchangeForm({ subject_token_type: null }), 'invalid_request')
      })

      it('§2.1: a subject_token_type other than an access token is refused', async () => {
        await expectRefused(
          exchangeForm({ subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }),
          'invalid_request',
        )
      })

      it('requested_token_type names the profile: an unknown one is refused (absent means access_token, delegation: test/oauth/delegation.test.ts)', async () => {
        await expectRefused(
          exchangeForm({ requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }),
          'invalid_request',
        )
      })

      it('§2.1: actor_token_type comes with actor_token and never without it', async () => {
        await expectRefused(exchangeForm({ actor_token: aliceToken }), 'invalid_request')
        await expectRefused(
          exchangeForm({ actor_token_type: ACCESS_TOKEN_TYPE }),
          'invalid_request',
        )
      })

      it('RFC 6749 §3.2: a repeated parameter is refused', async () => {
        const form = exchangeForm()
        form.append('subject_token', aliceToken)
        await expectRefused(form, 'invalid_request')
      })

      it('§2.2.2: an expired subject token is invalid_request', async () => {
        const hourAgo = new Date(Date.now() - 3_600_000)
        const expired = await personToken({ ...deputy.deps, clock: { now: () => hourAgo } })
        await expectRefused(exchangeForm({ subject_token: expired }), 'invalid_request')
      })

      it('§2.2.2: a subject token signed by someone else (a foreign issuer or key) is invalid_request', async () => {
        const { privateKey } = await generateKeyPair('ES256')
        const now = Math.floor(Date.now() / 1000)
        const forged = await new SignJWT({
          client_id: agent.client.clientId,
          scope: 'read',
          jti: 'forged',
        })
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'whatever' })
          .setIssuer(deputy.config.issuer)
          .setSubject(alice.id)
          .setAudience(RESOURCE)
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(privateKey)
        await expectRefused(exchangeForm({ subject_token: forged }), 'invalid_request')
        await expectRefused(exchangeForm({ subject_token: 'not-a-token' }), 'invalid_request')
      })

      it('§2.2.2: a revoked subject token is invalid_request', async () => {
        const revoked = await personToken()
        const response = await deputy.app.request('/revoke', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: agent.basic,
          },
          body: new URLSearchParams({ token: revoked }).toString(),
        })
        expect(response.status).toBe(200)
        await expectRefused(exchangeForm({ subject_token: revoked }), 'invalid_request')
      })

      it('a token that names no person (client credentials) has no connections', async () => {
        const machine = await mintAccessToken(deputy.deps, {
          client: noGrant.client,
          user: null,
          resource,
          scopes: ['read'],
          grantId: null,
        })
        // Held by a client registered for its resource: refused for naming no person.
        await expectRefused(exchangeForm({ subject_token: machine.token }), 'invalid_request')
      })

      it('a public client may not be registered for the exchange, and one without it is refused', async () => {
        await expect(
          deputy.deps.clients.register(
            { name: 'Public', public: true, grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE] },
            ADMIN,
          ),
        ).rejects.toThrow(/confidential/)
        const publicClient = await deputy.deps.clients.register(
          { name: 'Public app', public: true, redirectUris: ['http://127.0.0.1:7/cb'] },
          ADMIN,
        )
        const form = exchangeForm({ client_id: publicClient.client.clientId })
        await expectRefused(form, 'unauthorized_client', null)
      })

      it('an unauthenticated or wrongly authenticated client is invalid_client', async () => {
        await expectRefused(exchangeForm(), 'invalid_client', {
          ...mcp,
          basic: `Basic ${btoa(`${mcp.client.clientId}:wrong`)}`,
        })
      })

      it('a client not registered for the grant type is unauthorized_client', async () => {
        await expectRefused(exchangeForm(), 'unauthorized_client', noGrant)
      })

      it('a client the operator did not allow for the provider is unauthorized_client', async () => {
        await expectRefused(exchangeForm(), 'unauthorized_client', notAllowed)
      })

      it('a client that neither got the token nor serves its audience may not present it', async () => {
        await expectRefused(exchangeForm(), 'invalid_request', bystander)
      })

      it('connection is required, and an unknown or disabled one is invalid_target', async () => {
        await expectRefused(exchangeForm({ connection: null }), 'invalid_request')
        await expectRefused(exchangeForm({ connection: 'nope' }), 'invalid_target')
        await deputy.deps.providers.setStatus('acme', 'disabled', ADMIN)
        try {
          await expectRefused(exchangeForm(), 'invalid_target')
        } finally {
          await deputy.deps.providers.setStatus('acme', 'active', ADMIN)
        }
      })

      it('resource, audience and actor_token are not taken (the connection is the target; no delegation here)', async () => {
        await expectRefused(exchangeForm({ resource: RESOURCE }), 'invalid_request')
        await expectRefused(exchangeForm({ audience: 'acme' }), 'invalid_request')
        await expectRefused(
          exchangeForm({ actor_token: aliceToken, actor_token_type: ACCESS_TOKEN_TYPE }),
          'invalid_request',
        )
      })

      it('a malformed scope is invalid_scope', async () => {
        await expectRefused(exchangeForm({ scope: 'read "quoted"' }), 'invalid_scope')
      })

      it('every refusal is in the audit chain as token.refused, without the token', async () => {
        const rows = await deputy.deps.db
          .selectFrom('audit_events')
          .select(['type', 'data', 'reason'])
          .where('type', '=', 'token.refused')
          .execute()
        expect(rows.length).toBeGreaterThan(0)
        expect(JSON.stringify(rows)).not.toContain(aliceToken)
      })
    },
  )
}
