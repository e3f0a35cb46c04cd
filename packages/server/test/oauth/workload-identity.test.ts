import { decodeJwt, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JWKS_REFETCH_MIN_INTERVAL_SECONDS } from '../../src/oauth/client-jwks.js'
import { JWT_BEARER_GRANT_TYPE } from '../../src/oauth/clients.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'
import {
  ADMIN,
  auditOf,
  basic,
  createWorld,
  postForm,
  RESOURCE,
  type World,
} from './token-helpers.js'

// Issue 13 §4: RFC 7523 §2.1 jwt-bearer assertions from workload issuers the operator trusts — a
// Kubernetes service-account token, GitHub Actions' OIDC token, a SPIFFE JWT-SVID — get tokens as
// the client a rule maps their claims to, with no stored secret. Every MUST of RFC 7523 §3 has a
// refusal below. Keys are served by a real HTTP server on 127.0.0.1 (and one set is a file).

interface Key {
  kid: string
  alg: string
  privateKey: CryptoKey
  jwk: JWK & { kty: string }
}

async function newKey(kid: string, alg = 'ES256'): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  return {
    kid,
    alg,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } as JWK & { kty: string },
  }
}

const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local'
const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com'
const SPIFFE_ISSUER = 'https://oidc-discovery.prod.acme.example'
const GITHUB_AUDIENCE = 'https://deputy.acme.example'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `workload identity: jwt-bearer (${dialect.name})`,
    () => {
      let docs: DocumentServer
      let world: World
      let k8sKey: Key
      let githubKey: Key
      let spiffeKey: Key
      let indexer: string
      let deployer: string
      let secretAgent: { clientId: string; secret: string }
      const githubJwksPath = `/github-${crypto.randomUUID()}.json`

      beforeAll(async () => {
        docs = await startDocumentServer()
        world = await createWorld({
          database: await dialect.create(),
          config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
        })
        const { deps } = world.deputy
        ;[k8sKey, githubKey, spiffeKey] = await Promise.all([
          newKey('k8s-1'),
          newKey('gh-1', 'RS256'),
          newKey('spire-1'),
        ])
        docs.routes.set(githubJwksPath, json({ keys: [githubKey.jwk] }))
        docs.routes.set('/spiffe/keys', json({ keys: [spiffeKey.jwk] }))
        const register = async (name: string, scopes: string[]) =>
          (
            await deps.clients.register(
              { name, allowedScopes: scopes, grantTypes: [JWT_BEARER_GRANT_TYPE] },
              ADMIN,
            )
          ).client.clientId
        indexer = await register('Catalogue indexer', ['tools:read'])
        deployer = await register('Release workflow', ['tools:read', 'tools:write'])
        const other = await deps.clients.register(
          {
            name: 'Secret agent',
            allowedScopes: ['tools:read'],
            grantTypes: ['client_credentials', JWT_BEARER_GRANT_TYPE],
          },
          ADMIN,
        )
        secretAgent = { clientId: other.client.clientId, secret: other.clientSecret as string }
        const trust = deps.trustedIssuers
        // Kubernetes: the cluster's keys from `kubectl get --raw /openid/v1/jwks`, stored as a file.
        await trust.add(
          {
            name: 'prod-cluster',
            kind: 'workload',
            issuer: K8S_ISSUER,
            jwks: { keys: [k8sKey.jwk] },
            algorithms: ['ES256'],
          },
          ADMIN,
        )
        await trust.map(
          'prod-cluster',
          { client: indexer, claims: { sub: 'system:serviceaccount:shop:indexer' } },
          ADMIN,
        )
        // GitHub Actions: keys at a URL, a custom audience, mapped by repository and ref.
        await trust.add(
          {
            name: 'github-actions',
            kind: 'workload',
            issuer: GITHUB_ISSUER,
            jwksUri: `${docs.origin}${githubJwksPath}`,
            algorithms: ['RS256'],
            audience: GITHUB_AUDIENCE,
            maxLifetimeSeconds: 900,
          },
          ADMIN,
        )
        await trust.map(
          'github-actions',
          { client: deployer, claims: { repository: 'acme/shop', ref: 'refs/heads/main' } },
          ADMIN,
        )
        // SPIFFE: a JWT-SVID names the workload by its SPIFFE ID in `sub`.
        await trust.add(
          {
            name: 'spire',
            kind: 'workload',
            issuer: SPIFFE_ISSUER,
            jwksUri: `${docs.origin}/spiffe/keys`,
            algorithms: ['ES256'],
          },
          ADMIN,
        )
        await trust.map(
          'spire',
          { client: indexer, claims: { sub: 'spiffe://prod.acme.example/ns/shop/sa/indexer' } },
          ADMIN,
        )
      })
      afterAll(async () => {
        await world?.deputy.dispose()
        await docs?.close()
      })

      const now = () => Math.floor(world.clock.now().getTime() / 1000)

      function k8sClaims(): JWTPayload {
        return {
          iss: K8S_ISSUER,
          sub: 'system:serviceaccount:shop:indexer',
          aud: [world.deputy.config.issuer],
          iat: now(),
          nbf: now(),
          exp: now() + 3600,
          jti: crypto.randomUUID(),
          'kubernetes.io': {
            namespace: 'shop',
            serviceaccount: { name: 'indexer', uid: crypto.randomUUID() },
            pod: { name: 'indexer-7d9f', uid: crypto.randomUUID() },
          },
        }
      }

      function githubClaims(ref = 'refs/heads/main'): JWTPayload {
        return {
          iss: GITHUB_ISSUER,
          sub: `repo:acme/shop:ref:${ref}`,
          aud: GITHUB_AUDIENCE,
          jti: crypto.randomUUID(),
          repository: 'acme/shop',
          repository_owner: 'acme',
          ref,
          workflow: 'release',
          event_name: 'push',
          run_id: '1234567890',
          iat: now(),
          nbf: now() - 5,
          exp: now() + 300,
        }
      }

      function spiffeClaims(): JWTPayload {
        return {
          iss: SPIFFE_ISSUER,
          sub: 'spiffe://prod.acme.example/ns/shop/sa/indexer',
          aud: [world.deputy.config.issuer],
          iat: now(),
          exp: now() + 300,
          jti: crypto.randomUUID(),
        }
      }

      function sign(
        claims: JWTPayload,
        key: Key,
        header: Record<string, unknown> = {},
      ): Promise<string> {
        return new SignJWT(claims)
          .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
          .sign(key.privateKey)
      }

      function exchange(assertion: string, extra: Record<string, string> = {}, headers = {}) {
        return postForm(
          world,
          '/token',
          { grant_type: JWT_BEARER_GRANT_TYPE, assertion, ...extra },
          headers,
        )
      }

      async function refusal(response: Response, error = 'invalid_grant'): Promise<string> {
        const body = (await response.json()) as { error: string; error_description?: string }
        expect({ status: response.status, error: body.error }).toEqual({ status: 400, error })
        return (await auditOf(world, 'token.refused')).at(-1)?.reason ?? ''
      }

      it('a Kubernetes service-account token gets the mapped client a token, with no secret and no refresh token', async () => {
        const response = await exchange(await sign(k8sClaims(), k8sKey), { resource: RESOURCE })
        expect(response.status).toBe(200)
        const body = (await response.json()) as Record<string, unknown>
        expect(body.refresh_token).toBeUndefined()
        expect(body).toMatchObject({ token_type: 'Bearer', scope: 'tools:read' })
        const token = decodeJwt(body.access_token as string)
        expect(token).toMatchObject({ sub: indexer, client_id: indexer, aud: RESOURCE })
        const issued = (await auditOf(world, 'token.issued')).at(-1)
        expect(issued?.data).toMatchObject({
          grantType: JWT_BEARER_GRANT_TYPE,
          clientId: indexer,
          userId: null,
          refreshToken: false,
          assertion: {
            trustedIssuer: 'prod-cluster',
            issuer: K8S_ISSUER,
            subject: 'system:serviceaccount:shop:indexer',
          },
        })
      })

      it("GitHub Actions' OIDC token maps by repository and ref; its keys are fetched once and cached", async () => {
        const before = docs.hits.get(githubJwksPath) ?? 0
        const response = await exchange(await sign(githubClaims(), githubKey), {
          scope: 'tools:write',
        })
        expect(response.status).toBe(200)
        expect(
          decodeJwt(((await response.json()) as { access_token: string }).access_token),
        ).toMatchObject({
          sub: deployer,
          scope: 'tools:write',
        })
        expect((await exchange(await sign(githubClaims(), githubKey))).status).toBe(200)
        expect((docs.hits.get(githubJwksPath) ?? 0) - before).toBeLessThanOrEqual(1)
        expect(docs.hits.get(githubJwksPath)).toBe(1)
        // Another branch of the same repository matches no rule.
        expect(
          await refusal(await exchange(await sign(githubClaims('refs/heads/feature'), githubKey))),
        ).toBe('workload-not-mapped github-actions')
        // A scope the operator did not grant the client is refused, not dropped.
        expect(
          await refusal(
            await exchange(await sign(githubClaims(), githubKey), { scope: 'api:read' }),
            'invalid_scope',
          ),
        ).toMatch(/^scope-not-allowed/)
      })

      it('a SPIFFE JWT-SVID maps by its SPIFFE ID', async () => {
        const response = await exchange(await sign(spiffeClaims(), spiffeKey))
        expect(response.status).toBe(200)
        expect(
          decodeJwt(((await response.json()) as { access_token: string }).access_token).sub,
        ).toBe(indexer)
      })

      it('a SPIFFE trust bundle file works as it is: its jwt-svid keys verify, its x509-svid authorities are left out', async () => {
        const { deps } = world.deputy
        const bundleKey = await newKey('bundle-1')
        const added = await deps.trustedIssuers.add(
          {
            name: 'spire-bundle',
            kind: 'workload',
            issuer: 'https://spire.staging.acme.example',
            jwks: {
              keys: [
                { ...bundleKey.jwk, use: 'jwt-svid' },
                { kty: 'EC', crv: 'P-256', use: 'x509-svid', x5c: ['MIIB'], x: 'a', y: 'b' },
              ],
            },
            algorithms: ['ES256'],
          },
          ADMIN,
        )
        expect(added.jwks?.keys).toHaveLength(1)
        await deps.trustedIssuers.map(
          'spire-bundle',
          { client: indexer, claims: { sub: 'spiffe://staging.acme.example/indexer' } },
          ADMIN,
        )
        const claims = {
          ...spiffeClaims(),
          iss: 'https://spire.staging.acme.example',
          sub: 'spiffe://staging.acme.example/indexer',
        }
        expect((await exchange(await sign(claims, bundleKey))).status).toBe(200)
      })

      it('an unknown kid refetches the key set at most once a minute (unauthenticated callers cannot make Deputy fetch at will)', async () => {
        const path = '/spiffe/keys'
        const before = docs.hits.get(path) ?? 0
        const rotated = await newKey('spire-2')
        docs.routes.set(path, json({ keys: [spiffeKey.jwk, rotated.jwk] }))
        world.clock.advance(JWKS_REFETCH_MIN_INTERVAL_SECONDS)
        expect((await exchange(await sign(spiffeClaims(), rotated))).status).toBe(200)
        expect(docs.hits.get(path)).toBe(before + 1)
        for (let i = 0; i < 5; i++) {
          expect(
            await refusal(
              await exchange(await sign(spiffeClaims(), rotated, { kid: `made-up-${i}` })),
            ),
          ).toMatch(/^assertion-ERR_JWKS_NO_MATCHING_KEY/)
        }
        expect(docs.hits.get(path)).toBe(before + 1)
      })

      it('refuses what RFC 7523 §3 says must be refused', async () => {
        const stranger = await newKey('k8s-1')
        const cases: [string, Promise<string>, RegExp][] = [
          [
            'unknown issuer',
            sign({ ...k8sClaims(), iss: 'https://evil.example' }, k8sKey),
            /^untrusted-issuer https:\/\/evil\.example$/,
          ],
          ['no iss', sign({ ...k8sClaims(), iss: undefined }, k8sKey), /^assertion-without-iss$/],
          [
            'wrong signature',
            sign(k8sClaims(), stranger),
            /^workload-not-mapped|^assertion-ERR_JWS_SIGNATURE_VERIFICATION_FAILED/,
          ],
          [
            'aud not Deputy',
            sign({ ...k8sClaims(), aud: 'https://kubernetes.default.svc' }, k8sKey),
            /^assertion-ERR_JWT_CLAIM_VALIDATION_FAILED aud/,
          ],
          [
            'expired',
            sign({ ...k8sClaims(), iat: now() - 7200, nbf: now() - 7200, exp: now() - 60 }, k8sKey),
            /^assertion-ERR_JWT_EXPIRED exp/,
          ],
          [
            'valid for too long',
            sign({ ...k8sClaims(), exp: now() + 86_400 }, k8sKey),
            /^assertion-exp-too-far/,
          ],
          [
            'not yet valid',
            sign({ ...k8sClaims(), nbf: now() + 600 }, k8sKey),
            /^assertion-ERR_JWT_CLAIM_VALIDATION_FAILED nbf/,
          ],
          [
            'issued in the future',
            sign({ ...k8sClaims(), iat: now() + 600 }, k8sKey),
            /^assertion-iat-in-future/,
          ],
          [
            'no exp',
            sign({ ...k8sClaims(), exp: undefined }, k8sKey),
            /^assertion-ERR_JWT_CLAIM_VALIDATION_FAILED exp/,
          ],
          [
            'no jti',
            sign({ ...k8sClaims(), jti: undefined }, k8sKey),
            /^assertion-ERR_JWT_CLAIM_VALIDATION_FAILED jti/,
          ],
          [
            'an ID-JAG typ from a workload issuer',
            sign(k8sClaims(), k8sKey, { typ: 'oauth-id-jag+jwt' }),
            /^assertion-typ-id-jag-from-workload-issuer/,
          ],
        ]
        for (const [what, assertion, reason] of cases) {
          expect(await refusal(await exchange(await assertion)), what).toMatch(reason)
        }
        // No sub: nothing to map, so no client.
        expect(
          await refusal(await exchange(await sign({ ...k8sClaims(), sub: undefined }, k8sKey))),
        ).toBe('workload-not-mapped prod-cluster')
        expect(await refusal(await exchange('not-a-jwt'))).toBe('malformed-assertion')
        expect(
          await refusal(
            await postForm(world, '/token', { grant_type: JWT_BEARER_GRANT_TYPE }),
            'invalid_request',
          ),
        ).toBe('missing-assertion')
      })

      it('an algorithm the issuer does not allow is refused, and never a shared-secret one', async () => {
        const eddsa = await newKey('k8s-1', 'EdDSA')
        expect(await refusal(await exchange(await sign(k8sClaims(), eddsa)))).toMatch(
          /^assertion-ERR_JOSE_ALG_NOT_ALLOWED/,
        )
        const hs = await new SignJWT(k8sClaims())
          .setProtectedHeader({ alg: 'HS256', kid: 'k8s-1' })
          .sign(new TextEncoder().encode('a-shared-secret-anyone-could-hold!'))
        expect(await refusal(await exchange(hs))).toMatch(/^assertion-ERR_JOSE_ALG_NOT_ALLOWED/)
        await expect(
          world.deputy.deps.trustedIssuers.add(
            {
              name: 'hmac',
              kind: 'workload',
              issuer: 'https://hmac.example',
              jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] },
              algorithms: ['HS256' as 'ES256'],
            },
            ADMIN,
          ),
        ).rejects.toThrow(/algorithms/)
      })

      it('a jti is single use until the assertion expires', async () => {
        const assertion = await sign(k8sClaims(), k8sKey)
        expect((await exchange(assertion)).status).toBe(200)
        expect(await refusal(await exchange(assertion))).toBe('assertion-replayed prod-cluster')
      })

      it('with client credentials, the assertion must map to that very client; a body client_id must name the mapped one', async () => {
        const authenticated = await exchange(
          await sign(k8sClaims(), k8sKey),
          {},
          basic(secretAgent.clientId, secretAgent.secret),
        )
        expect(await refusal(authenticated)).toBe(
          `workload-not-mapped-to-client prod-cluster ${secretAgent.clientId}`,
        )
        expect(
          await refusal(
            await exchange(await sign(k8sClaims(), k8sKey), { client_id: deployer }),
            'invalid_client',
          ),
        ).toBe('client-id-mismatch')
        expect(
          (await exchange(await sign(k8sClaims(), k8sKey), { client_id: indexer })).status,
        ).toBe(200)
      })

      it('a mapped client that may not use the grant type, or that is disabled, gets nothing', async () => {
        const { deps } = world.deputy
        const plain = (
          await deps.clients.register(
            { name: 'No jwt-bearer', allowedScopes: ['tools:read'] },
            ADMIN,
          )
        ).client.clientId
        await deps.trustedIssuers.map(
          'prod-cluster',
          { client: plain, claims: { sub: 'system:serviceaccount:shop:plain' } },
          ADMIN,
        )
        const claims = { ...k8sClaims(), sub: 'system:serviceaccount:shop:plain' }
        expect(
          await refusal(await exchange(await sign(claims, k8sKey)), 'unauthorized_client'),
        ).toBe(`grant-type-not-allowed ${JWT_BEARER_GRANT_TYPE}`)
        await deps.clients.disable(plain, ADMIN)
        expect(
          await refusal(
            await exchange(await sign({ ...claims, jti: crypto.randomUUID() }, k8sKey)),
          ),
        ).toBe(`workload-client-unavailable ${plain}`)
        // A rule that maps one workload to two clients maps it to none (the reason was recorded
        // above, so this repeat is only counted in the refusal log: the answer says it).
        await deps.trustedIssuers.map(
          'prod-cluster',
          { client: deployer, claims: { sub: 'system:serviceaccount:shop:indexer' } },
          ADMIN,
        )
        const ambiguous = await exchange(await sign(k8sClaims(), k8sKey))
        expect(ambiguous.status).toBe(400)
        expect(await ambiguous.json()).toMatchObject({
          error: 'invalid_grant',
          error_description: 'no rule maps this workload to a client',
        })
        await deps.trustedIssuers.unmap('prod-cluster', deployer, ADMIN)
        expect((await exchange(await sign(k8sClaims(), k8sKey))).status).toBe(200)
      })

      it('the key set of an issuer whose JWKS URL cannot be read authenticates nothing', async () => {
        const { deps } = world.deputy
        await deps.trustedIssuers.add(
          {
            name: 'broken',
            kind: 'workload',
            issuer: 'https://broken.example',
            jwksUri: `${docs.origin}/nothing-here`,
          },
          ADMIN,
        )
        await deps.trustedIssuers.map('broken', { client: indexer, claims: { sub: 'x' } }, ADMIN)
        const claims = { ...k8sClaims(), iss: 'https://broken.example', sub: 'x' }
        expect(await refusal(await exchange(await sign(claims, k8sKey)))).toBe(
          'issuer-jwks-unavailable broken jwks_uri answered 404',
        )
        // Removed: its assertions are from nobody Deputy trusts.
        await deps.trustedIssuers.remove('broken', ADMIN)
        expect(await refusal(await exchange(await sign(claims, k8sKey)))).toBe(
          'untrusted-issuer https://broken.example',
        )
        expect((await auditOf(world, 'trusted-issuer.removed')).at(-1)?.data).toMatchObject({
          name: 'broken',
        })
      })
    },
  )
}
