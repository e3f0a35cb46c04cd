import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'
import {
  ADMIN,
  auditOf,
  basic,
  createWorld,
  OTHER_RESOURCE,
  postForm,
  RESOURCE,
  verifyWithJwks,
  type World,
} from './token-helpers.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

// Issue 9 §1: anyone who hosted a JSON file at an https URL got access tokens — a Client ID
// Metadata Document listing client_credentials, private_key_jwt and its own keys was accepted, and
// the grant minted a token for the default resource with `scope: ""`. Grants without a person now
// need an operator's decision; a self-asserted client gets nothing no person or operator gave it.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `grants without a person need an operator (${dialect.name})`,
    () => {
      let docs: DocumentServer
      let database: TestDatabase
      let world: World
      let privateKey: CryptoKey
      let publicJwk: JWK
      let clientId: string

      beforeAll(async () => {
        docs = await startDocumentServer()
      })
      afterAll(() => docs?.close())

      beforeEach(async () => {
        database = await dialect.create()
        world = await createWorld({
          database,
          config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
        })
        const pair = await generateKeyPair('ES256', { extractable: true })
        privateKey = pair.privateKey
        publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }
        clientId = `${docs.origin}/machine-${crypto.randomUUID()}.json`
        docs.routes.set(
          new URL(clientId).pathname,
          json({
            client_id: clientId,
            client_name: 'Self-asserted machine',
            redirect_uris: ['http://127.0.0.1:3000/callback'],
            grant_types: ['client_credentials'],
            token_endpoint_auth_method: 'private_key_jwt',
            jwks: { keys: [publicJwk] },
          }),
        )
      })
      afterEach(async () => {
        await world.deputy.dispose()
      })

      async function machineToken(params: Record<string, string> = {}): Promise<Response> {
        const now = Math.floor(world.clock.now().getTime() / 1000)
        const assertion = await new SignJWT({ jti: crypto.randomUUID() })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer(clientId)
          .setSubject(clientId)
          .setAudience(world.deputy.config.issuer)
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(privateKey)
        return postForm(world, '/token', {
          grant_type: 'client_credentials',
          client_id: clientId,
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: assertion,
          ...params,
        })
      }

      async function errorOf(response: Response): Promise<string> {
        expect(response.status).toBe(400)
        return ((await response.json()) as { error: string }).error
      }

      const host = () => new URL(clientId).host

      it('a metadata document listing client_credentials and its own keys gets no token on its own say-so', async () => {
        expect(await errorOf(await machineToken())).toBe('unauthorized_client')
        expect(await errorOf(await machineToken({ resource: RESOURCE, scope: 'tools:read' }))).toBe(
          'unauthorized_client',
        )
        expect(await auditOf(world, 'token.issued')).toEqual([])
        const [refused] = await auditOf(world, 'token.refused')
        expect(refused?.reason).toBe(`metadata-host-not-allowed ${host()}`)
      })

      it("with the operator's allow-list for its host, gets exactly the granted scopes at the granted resource", async () => {
        await world.deputy.deps.metadataHosts.allow(
          { host: host(), resource: RESOURCE, scopes: ['tools:read'] },
          ADMIN,
        )
        const response = await machineToken()
        expect(response.status).toBe(200)
        const body = (await response.json()) as { access_token: string; scope: string }
        expect(body.scope).toBe('tools:read')
        const { payload } = await verifyWithJwks(world, body.access_token, 'at+jwt')
        expect(payload).toMatchObject({ sub: clientId, aud: RESOURCE, scope: 'tools:read' })

        expect(await errorOf(await machineToken({ scope: 'tools:write' }))).toBe('invalid_scope')
        expect(await errorOf(await machineToken({ resource: OTHER_RESOURCE }))).toBe(
          'invalid_target',
        )
        const [allowed] = await auditOf(world, 'client-metadata-host.allowed')
        expect(allowed?.data).toMatchObject({
          host: host(),
          resource: RESOURCE,
          scopes: ['tools:read'],
        })
      })

      it('another host on the allow-list gives this one nothing, and disallowing ends it', async () => {
        await world.deputy.deps.metadataHosts.allow(
          { host: 'tools.example.com', resource: RESOURCE, scopes: ['tools:read'] },
          ADMIN,
        )
        expect(await errorOf(await machineToken())).toBe('unauthorized_client')
        await world.deputy.deps.metadataHosts.allow(
          { host: host(), resource: RESOURCE, scopes: ['tools:read'] },
          ADMIN,
        )
        expect((await machineToken()).status).toBe(200)
        await world.deputy.deps.metadataHosts.disallow(host(), undefined, ADMIN)
        expect(await errorOf(await machineToken())).toBe('unauthorized_client')
      })

      it('the allow-list refuses a scope the resource does not offer and an unknown resource', async () => {
        const hosts = world.deputy.deps.metadataHosts
        await expect(
          hosts.allow({ host: host(), resource: RESOURCE, scopes: ['api:read'] }, ADMIN),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
        await expect(
          hosts.allow({ host: host(), resource: 'http://127.0.0.1:1/x', scopes: ['a'] }, ADMIN),
        ).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
        await expect(
          hosts.allow({ host: 'https://tools.example.com', resource: RESOURCE, scopes: [] }, ADMIN),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
        await expect(
          hosts.allow({ host: host(), resource: RESOURCE, scopes: [] }, ADMIN),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
        expect(await hosts.list()).toEqual([])
      })

      it('a request for no granted scope is refused with invalid_scope, never an empty-scope token', async () => {
        // A pre-registered agent whose scopes this resource does not offer.
        const { client, clientSecret } = await world.deputy.deps.clients.register(
          { name: 'Elsewhere agent', allowedScopes: ['api:read'] },
          ADMIN,
        )
        const response = await postForm(
          world,
          '/token',
          { grant_type: 'client_credentials', resource: RESOURCE },
          basic(client.clientId, clientSecret as string),
        )
        expect(await errorOf(response)).toBe('invalid_scope')
        expect(await auditOf(world, 'token.issued')).toEqual([])
      })

      it("a pre-registered client's allowed resources bound where its tokens may go", async () => {
        const { client, clientSecret } = await world.deputy.deps.clients.register(
          {
            name: 'Bound agent',
            allowedScopes: ['tools:read', 'api:read'],
            allowedResources: [RESOURCE],
          },
          ADMIN,
        )
        const ask = (resource: string) =>
          postForm(
            world,
            '/token',
            { grant_type: 'client_credentials', resource },
            basic(client.clientId, clientSecret as string),
          )
        expect((await ask(RESOURCE)).status).toBe(200)
        expect(await errorOf(await ask(OTHER_RESOURCE))).toBe('invalid_target')
      })

      it('only an operator gives client_credentials: not dynamic registration, not a client without scopes', async () => {
        const clients = world.deputy.deps.clients
        await expect(
          clients.register({ name: 'Self-registered', grantTypes: ['client_credentials'] }, ADMIN, {
            kind: 'dynamic',
          }),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
        await expect(
          clients.register(
            {
              name: 'Self-registered',
              redirectUris: ['http://127.0.0.1:3000/cb'],
              allowedScopes: ['tools:read'],
            },
            ADMIN,
            { kind: 'dynamic' },
          ),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
        await expect(
          clients.register({ name: 'No scopes', grantTypes: ['client_credentials'] }, ADMIN),
        ).rejects.toThrow(/at least one allowed scope/)
        const register = await world.deputy.app.request('/register', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            redirect_uris: ['http://127.0.0.1:3000/cb'],
            grant_types: ['client_credentials'],
          }),
        })
        expect(register.status).toBe(400)
        expect(((await register.json()) as { error: string }).error).toBe('invalid_client_metadata')
      })
    },
  )
}
