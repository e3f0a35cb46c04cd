import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { JWKS_REFETCH_MIN_INTERVAL_SECONDS } from '../../src/oauth/client-jwks.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'
import { ADMIN, auditOf, createWorld, postForm, RESOURCE, type World } from './token-helpers.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

// Issue 13 §4: private_key_jwt (RFC 7523 §3) with the keys at the client's jwks_uri (RFC 7591 §2),
// for registered and metadata-document clients: fetched through the SSRF guard, cached, refetched
// when an assertion names a kid the cached set lacks — at most once a minute per URL.

interface Key {
  kid: string
  privateKey: CryptoKey
  jwk: JWK
}

async function newKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } }
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `private_key_jwt with the client's jwks_uri (${dialect.name})`,
    () => {
      let docs: DocumentServer
      let world: World
      let k1: Key
      let jwksPath: string

      beforeAll(async () => {
        docs = await startDocumentServer()
      })
      afterAll(() => docs?.close())

      beforeEach(async () => {
        world = await createWorld({
          database: await dialect.create(),
          config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
        })
        k1 = await newKey('k1')
        jwksPath = `/keys-${crypto.randomUUID()}.json`
        docs.routes.set(jwksPath, json({ keys: [k1.jwk] }))
      })
      afterEach(() => world.deputy.dispose())

      const jwksUri = () => `${docs.origin}${jwksPath}`
      const fetches = () => docs.hits.get(jwksPath) ?? 0

      async function assertion(clientId: string, key: Key, kid = key.kid): Promise<string> {
        const now = Math.floor(world.clock.now().getTime() / 1000)
        return new SignJWT({ jti: crypto.randomUUID() })
          .setProtectedHeader({ alg: 'ES256', kid })
          .setIssuer(clientId)
          .setSubject(clientId)
          .setAudience(world.deputy.config.issuer)
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(key.privateKey)
      }

      async function token(clientId: string, key: Key, kid?: string): Promise<Response> {
        return postForm(world, '/token', {
          grant_type: 'client_credentials',
          client_id: clientId,
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await assertion(clientId, key, kid),
          resource: RESOURCE,
          scope: 'tools:read',
        })
      }

      async function refusedReason(response: Response): Promise<string | undefined> {
        expect(response.status).toBe(400)
        expect(((await response.json()) as { error: string }).error).toBe('invalid_client')
        expect(response.headers.get('www-authenticate')).toBeNull()
        return (await auditOf(world, 'token.refused')).at(-1)?.reason ?? undefined
      }

      async function registered(): Promise<string> {
        const { client } = await world.deputy.deps.clients.register(
          {
            name: 'Keyed agent',
            tokenEndpointAuthMethod: 'private_key_jwt',
            jwksUri: jwksUri(),
            allowedScopes: ['tools:read'],
          },
          ADMIN,
        )
        return client.clientId
      }

      it('a registered client authenticates with a key from its jwks_uri; the set is fetched once and cached', async () => {
        const clientId = await registered()
        expect((await token(clientId, k1)).status).toBe(200)
        expect((await token(clientId, k1)).status).toBe(200)
        expect(fetches()).toBe(1)
      })

      it('a metadata-document client authenticates with a key from the jwks_uri its document names', async () => {
        const clientId = `${docs.origin}/machine-${crypto.randomUUID()}.json`
        docs.routes.set(
          new URL(clientId).pathname,
          json({
            client_id: clientId,
            client_name: 'Self-asserted machine',
            redirect_uris: ['http://127.0.0.1:3000/callback'],
            grant_types: ['client_credentials'],
            token_endpoint_auth_method: 'private_key_jwt',
            jwks_uri: jwksUri(),
          }),
        )
        await world.deputy.deps.metadataHosts.allow(
          { host: new URL(clientId).host, resource: RESOURCE, scopes: ['tools:read'] },
          ADMIN,
        )
        const response = await token(clientId, k1)
        expect(response.status).toBe(200)
        expect(fetches()).toBe(1)
        // A key the set does not hold authenticates nothing.
        const stranger = await newKey('k1')
        expect(await refusedReason(await token(clientId, stranger))).toMatch(
          /^client-assertion-ERR_JWS_SIGNATURE_VERIFICATION_FAILED/,
        )
      })

      it('an unknown kid refetches the set (a rotated key is picked up), at most once a minute', async () => {
        const clientId = await registered()
        expect((await token(clientId, k1)).status).toBe(200)
        const k2 = await newKey('k2')
        docs.routes.set(jwksPath, json({ keys: [k1.jwk, k2.jwk] }))
        // Within the minimum interval: no refetch, so the new key is not known yet.
        expect(await refusedReason(await token(clientId, k2))).toMatch(/^client-assertion-/)
        expect(await refusedReason(await token(clientId, k2, 'made-up'))).toMatch(
          /^client-assertion-/,
        )
        expect(fetches()).toBe(1)
        world.clock.advance(JWKS_REFETCH_MIN_INTERVAL_SECONDS)
        expect((await token(clientId, k2)).status).toBe(200)
        expect(fetches()).toBe(2)
        // Made-up kids right after cost no fetch; a known kid keeps working from the cache.
        for (let i = 0; i < 5; i++) await token(clientId, k2, `made-up-${i}`)
        expect((await token(clientId, k1)).status).toBe(200)
        expect(fetches()).toBe(2)
      })

      it('fails closed when the jwks_uri cannot be read: 404, not a JWK Set, or a private address', async () => {
        const clientId = await registered()
        docs.routes.delete(jwksPath)
        expect(await refusedReason(await token(clientId, k1))).toBe(
          'client-jwks-unavailable jwks_uri answered 404',
        )
        docs.routes.set(jwksPath, json({ keys: [] }))
        expect(await refusedReason(await token(clientId, k1))).toBe(
          'client-jwks-unavailable jwks_uri is not a JWK Set',
        )
        const { client } = await world.deputy.deps.clients.register(
          {
            name: 'Pointing inside',
            tokenEndpointAuthMethod: 'private_key_jwt',
            jwksUri: 'http://10.0.0.1/keys.json',
            allowedScopes: ['tools:read'],
          },
          ADMIN,
        )
        expect(await refusedReason(await token(client.clientId, k1))).toMatch(
          /^client-jwks-unavailable jwks_uri /,
        )
        expect(await auditOf(world, 'token.issued')).toEqual([])
      })

      it('RFC 7591 §2: jwks and jwks_uri together are refused at registration and in a document', async () => {
        await expect(
          world.deputy.deps.clients.register(
            {
              name: 'Both',
              tokenEndpointAuthMethod: 'private_key_jwt',
              jwks: { keys: [k1.jwk as Record<string, unknown>] },
              jwksUri: jwksUri(),
            },
            ADMIN,
          ),
        ).rejects.toThrow(/not both/)
        const clientId = `${docs.origin}/both-${crypto.randomUUID()}.json`
        docs.routes.set(
          new URL(clientId).pathname,
          json({
            client_id: clientId,
            client_name: 'Both',
            redirect_uris: ['http://127.0.0.1:3000/callback'],
            token_endpoint_auth_method: 'private_key_jwt',
            jwks: { keys: [k1.jwk] },
            jwks_uri: jwksUri(),
          }),
        )
        expect(await world.deputy.deps.clients.resolve(clientId)).toBeUndefined()
      })
    },
  )
}
