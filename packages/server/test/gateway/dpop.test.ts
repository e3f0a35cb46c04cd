import { createHash } from 'node:crypto'
import { jwtVerifier, type ProtectedMcpServer, protectMcpServer } from '@deputy/mcp'
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { INITIALIZE, listenOn, startGateway, startIssuer } from './helpers.js'

// RFC 9449 §7 at the resource, shown for both of Deputy's resource servers at once: the kit
// (`protectMcpServer`) and the gateway, which checks through the kit. A stand-in issuer mints
// tokens bound to a key (`cnf.jkt`); every MUST of §4.3 and §7.1 has a refusal here.

type Issuer = Awaited<ReturnType<typeof startIssuer>>

const ath = (token: string) => createHash('sha256').update(token).digest('base64url')

interface Key {
  privateKey: CryptoKey
  jwk: JWK
  jkt: string
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = await exportJWK(publicKey)
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) }
}

/** A DPoP proof (RFC 9449 §4.2); `header` and `claims` override what a correct one carries. */
async function proof(
  key: Key,
  claims: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ jti: crypto.randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(key.privateKey)
}

let issuer: Issuer
let upstream: Awaited<ReturnType<typeof startHttpUpstream>>
let gw: Awaited<ReturnType<typeof startGateway>>
let kitServer: { url: string; close(): Promise<void> }
let key: Key
let other: Key

beforeAll(async () => {
  issuer = await startIssuer()
  upstream = await startHttpUpstream()
  gw = await startGateway({ issuer: issuer.issuer, upstream: httpUpstream({ url: upstream.url }) })
  let kit: ProtectedMcpServer | undefined
  kitServer = await listenOn((request) => (kit as ProtectedMcpServer).fetch(request))
  const resource = `${kitServer.url}/mcp`
  kit = protectMcpServer({
    resource,
    authorizationServers: [issuer.issuer],
    verifier: jwtVerifier({
      issuer: issuer.issuer,
      audience: resource,
      jwksUri: `${issuer.issuer}/jwks`,
    }),
    server: { name: 'dpop-kit', version: '1.0.0' },
  })
  key = await newKey()
  other = await newKey()
})
afterAll(async () => {
  await gw?.close()
  await kitServer?.close()
  await upstream?.close()
  await issuer?.close()
})

const servers = [
  { name: 'the kit', resource: () => `${kitServer.url}/mcp` },
  { name: 'the gateway', resource: () => gw.resource },
]

for (const server of servers) {
  describe(`DPoP at ${server.name} (RFC 9449 §7)`, () => {
    const post = (headers: Record<string, string>, url = server.resource()) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
        body: JSON.stringify(INITIALIZE),
      })
    const bound = (jkt = key.jkt) => issuer.token({ aud: server.resource(), cnf: { jkt } })
    const good = async (token: string, over: JWTPayload = {}) =>
      proof(key, { htm: 'POST', htu: server.resource(), ath: ath(token), ...over })

    async function refusedProof(response: Response): Promise<void> {
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ error: 'invalid_dpop_proof' })
      expect(response.headers.get('www-authenticate')).toMatch(
        /^DPoP error="invalid_dpop_proof", error_description="[^"]+", algs="[^"]*ES256[^"]*"/,
      )
    }

    it('a bound token with a proof for this request, made with its key, is let through', async () => {
      const token = await bound()
      const response = await post({ authorization: `DPoP ${token}`, dpop: await good(token) })
      expect(response.status).toBe(200)
    })

    it('the htu is compared without query and fragment, after normalisation', async () => {
      const token = await bound()
      const url = new URL(server.resource())
      const htu = `HTTP://${url.host.toUpperCase()}${url.pathname}?x=1#frag`
      const response = await post({
        authorization: `DPoP ${token}`,
        dpop: await good(token, { htu }),
      })
      expect(response.status).toBe(200)
    })

    it('a 401 without credentials names both schemes, DPoP with its algs', async () => {
      const response = await post({})
      expect(response.status).toBe(401)
      const challenge = response.headers.get('www-authenticate') ?? ''
      expect(challenge).toMatch(/^Bearer resource_metadata="/)
      expect(challenge).toMatch(/, DPoP algs="ES256 [^"]*EdDSA[^"]*"$/)
    })

    it('a bound token presented as Bearer is refused (invalid_token, §7.2)', async () => {
      const token = await bound()
      const response = await post({ authorization: `Bearer ${token}`, dpop: await good(token) })
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ error: 'invalid_token' })
    })

    it('an unbound token with the DPoP scheme is refused (invalid_token): nothing to prove', async () => {
      const token = await issuer.token({ aud: server.resource() })
      const response = await post({ authorization: `DPoP ${token}`, dpop: await good(token) })
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ error: 'invalid_token' })
      expect(response.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/)
      // The same token as Bearer is fine: a Bearer-only token stays a Bearer token.
      expect((await post({ authorization: `Bearer ${token}` })).status).toBe(200)
    })

    it('refuses a missing proof, and two proofs', async () => {
      const token = await bound()
      await refusedProof(await post({ authorization: `DPoP ${token}` }))
      const two = `${await good(token)}, ${await good(token)}`
      await refusedProof(await post({ authorization: `DPoP ${token}`, dpop: two }))
    })

    it('refuses a proof for another method (htm) or another URL (htu)', async () => {
      const token = await bound()
      await refusedProof(
        await post({ authorization: `DPoP ${token}`, dpop: await good(token, { htm: 'GET' }) }),
      )
      await refusedProof(
        await post({
          authorization: `DPoP ${token}`,
          dpop: await good(token, { htu: `${server.resource()}/elsewhere` }),
        }),
      )
    })

    it('refuses a proof whose iat is too old or in the future', async () => {
      const token = await bound()
      const now = Math.floor(Date.now() / 1000)
      for (const iat of [now - 3600, now + 3600]) {
        await refusedProof(
          await post({ authorization: `DPoP ${token}`, dpop: await good(token, { iat }) }),
        )
      }
    })

    it('refuses a replayed proof (same jti)', async () => {
      const token = await bound()
      const once = await good(token)
      expect((await post({ authorization: `DPoP ${token}`, dpop: once })).status).toBe(200)
      await refusedProof(await post({ authorization: `DPoP ${token}`, dpop: once }))
    })

    it('refuses a missing ath, and the ath of another token', async () => {
      const token = await bound()
      const anotherToken = await bound()
      await refusedProof(
        await post({ authorization: `DPoP ${token}`, dpop: await good(token, { ath: undefined }) }),
      )
      await refusedProof(
        await post({
          authorization: `DPoP ${token}`,
          dpop: await good(token, { ath: ath(anotherToken) }),
        }),
      )
    })

    it('refuses a proof made with a key other than the one the token is bound to', async () => {
      const token = await bound()
      const proofOfOther = await proof(other, {
        htm: 'POST',
        htu: server.resource(),
        ath: ath(token),
      })
      await refusedProof(await post({ authorization: `DPoP ${token}`, dpop: proofOfOther }))
    })

    it('refuses a bad typ, a symmetric alg, a private key in the jwk header, and no jwk', async () => {
      const token = await bound()
      const claims = { htm: 'POST', htu: server.resource(), ath: ath(token) }
      await refusedProof(
        await post({
          authorization: `DPoP ${token}`,
          dpop: await proof(key, claims, { typ: 'JWT' }),
        }),
      )
      const secret = new TextEncoder().encode('a-shared-secret-of-thirty-two-bytes!')
      const symmetric = await new SignJWT({
        jti: 'h1',
        iat: Math.floor(Date.now() / 1000),
        ...claims,
      })
        .setProtectedHeader({
          alg: 'HS256',
          typ: 'dpop+jwt',
          // A symmetric key in the header: jose's types rightly refuse it, the test sends it anyway.
          jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') } as JWK as never,
        })
        .sign(secret)
      await refusedProof(await post({ authorization: `DPoP ${token}`, dpop: symmetric }))
      const privateJwk = await exportJWK(key.privateKey)
      await refusedProof(
        await post({
          authorization: `DPoP ${token}`,
          dpop: await proof(key, claims, { jwk: privateJwk }),
        }),
      )
      await refusedProof(
        await post({
          authorization: `DPoP ${token}`,
          dpop: await proof(key, claims, { jwk: undefined }),
        }),
      )
    })

    it('refuses a proof whose signature does not verify', async () => {
      const token = await bound()
      const [h, p] = (await good(token)).split('.')
      const forged = `${h}.${p}.${(await good(token)).split('.')[2]}`
      await refusedProof(await post({ authorization: `DPoP ${token}`, dpop: forged }))
    })
  })
}
