import { decodeJwt, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JWT_BEARER_GRANT_TYPE } from '../../src/oauth/clients.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import {
  ADMIN,
  auditOf,
  basic,
  createWorld,
  postForm,
  RESOURCE,
  type World,
} from './token-helpers.js'

// Issue 13 §2: which person an ID-JAG's token is for at the resource's authorization server — the
// IdP's subject through the identities linked to a sign-in provider the operator named — and what
// happens when none matches (refused, nobody created). The two-instance flow is interop/id-jag.test.ts.

const IDP = 'https://idp.acme.example'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`ID-JAG: the person (${dialect.name})`, () => {
    let world: World
    let privateKey: CryptoKey
    let agent: { clientId: string; secret: string }
    let publicClient: string

    beforeAll(async () => {
      world = await createWorld({ database: await dialect.create() })
      const { deps } = world.deputy
      const pair = await generateKeyPair('ES256')
      privateKey = pair.privateKey
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', kty: 'EC' }
      await deps.providers.add({ name: 'acme-sso', type: 'github', clientId: 'acme' }, ADMIN)
      await deps.trustedIssuers.add(
        {
          name: 'acme-idp',
          kind: 'enterprise-idp',
          issuer: IDP,
          jwks: { keys: [jwk] },
          linkProvider: 'acme-sso',
        },
        ADMIN,
      )
      // Alice signed in through the provider once: her IdP subject is linked.
      await deps.db
        .insertInto('provider_identities')
        .values({
          provider: 'acme-sso',
          subject: 'idp-user-42',
          user_id: world.alice.id,
          email: 'alice@example.com',
          claims: '{}',
          created_at: Date.now(),
          last_sign_in_at: null,
        })
        .execute()
      const created = await deps.clients.register(
        { name: 'Enterprise agent', grantTypes: [JWT_BEARER_GRANT_TYPE] },
        ADMIN,
      )
      agent = { clientId: created.client.clientId, secret: created.clientSecret as string }
      publicClient = (
        await deps.clients.register(
          {
            name: 'Public',
            public: true,
            grantTypes: [JWT_BEARER_GRANT_TYPE],
            redirectUris: ['http://127.0.0.1:3000/cb'],
          },
          ADMIN,
        )
      ).client.clientId
    })
    afterAll(() => world?.deputy.dispose())

    function idJag(claims: JWTPayload = {}, clientId = agent.clientId): Promise<string> {
      const now = Math.floor(world.clock.now().getTime() / 1000)
      return new SignJWT({
        sub: 'idp-user-42',
        aud: world.deputy.config.issuer,
        client_id: clientId,
        jti: crypto.randomUUID(),
        resource: RESOURCE,
        scope: 'tools:read',
        ...claims,
      })
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'oauth-id-jag+jwt' })
        .setIssuer(IDP)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(privateKey)
    }

    const redeem = async (
      assertion: string,
      headers = basic(agent.clientId, agent.secret),
      extra: Record<string, string> = {},
    ) =>
      postForm(world, '/token', { grant_type: JWT_BEARER_GRANT_TYPE, assertion, ...extra }, headers)

    async function refused(response: Response, error: string): Promise<string | null | undefined> {
      expect(response.status).toBe(400)
      expect(((await response.json()) as { error: string }).error).toBe(error)
      return (await auditOf(world, 'token.refused')).at(-1)?.reason
    }

    it("the IdP's subject, linked to the named sign-in provider, is the person the token is for", async () => {
      const response = await redeem(await idJag())
      expect(response.status).toBe(200)
      const body = (await response.json()) as { access_token: string; refresh_token?: string }
      expect(body.refresh_token).toBeUndefined()
      expect(decodeJwt(body.access_token)).toMatchObject({
        sub: world.alice.id,
        client_id: agent.clientId,
        aud: RESOURCE,
        scope: 'tools:read',
      })
    })

    it('an email claim names nobody unless the operator said this IdP may: no match is refused and nobody is created', async () => {
      const before = await world.deputy.deps.db.selectFrom('users').select('id').execute()
      expect(
        await refused(
          await redeem(await idJag({ sub: 'idp-user-77', email: 'alice@example.com' })),
          'invalid_grant',
        ),
      ).toBe('id-jag-no-person acme-idp')
      expect(await world.deputy.deps.db.selectFrom('users').select('id').execute()).toHaveLength(
        before.length,
      )
    })

    it('a public client, or no client authentication at all, gets nothing for an ID-JAG', async () => {
      expect(
        await refused(
          await redeem(await idJag({}, publicClient), {}, { client_id: publicClient }),
          'invalid_client',
        ),
      ).toBe('id-jag-without-client-authentication acme-idp')
    })

    it('an ID-JAG naming more audiences than this one is refused', async () => {
      const aud = [world.deputy.config.issuer, 'https://elsewhere.example']
      expect(await refused(await redeem(await idJag({ aud })), 'invalid_grant')).toBe(
        'id-jag-aud-not-single acme-idp',
      )
    })

    it('one issuer is trusted once for its assertions and once as an ID-JAG audience (two Deputies in both roles)', async () => {
      const trust = world.deputy.deps.trustedIssuers
      await expect(
        trust.add({ name: 'acme-as', kind: 'resource-as', issuer: IDP }, ADMIN),
      ).resolves.toMatchObject({ kind: 'resource-as' })
      await expect(
        trust.add(
          {
            name: 'acme-workloads',
            kind: 'workload',
            issuer: IDP,
            jwksUri: 'https://idp.acme.example/jwks',
          },
          ADMIN,
        ),
      ).rejects.toThrow(`${IDP} is already trusted as acme-idp`)
      // The audience entry takes nothing away from the IdP entry.
      expect((await redeem(await idJag())).status).toBe(200)
    })

    it("a disabled person's ID-JAG gets nothing", async () => {
      await world.deputy.deps.users.setStatus('alice@example.com', 'disabled', ADMIN)
      expect(await refused(await redeem(await idJag()), 'invalid_grant')).toBe(
        'id-jag-person-disabled acme-idp',
      )
    })
  })
}
