import { decodeProtectedHeader } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signInAndConsent } from '../helpers/sign-in.js'
import { type InteropDeputy, PERSON, RESOURCE, startInteropDeputy } from './fixture.js'

/**
 * OpenID Connect Core §3.1.3.6 `at_hash`: the ID token issued with an access token carries the
 * base64url of the left half of the hash of that access token, the hash chosen by the ID token's
 * `alg` (ES256 → SHA-256; EdDSA with Ed25519 → SHA-512, OpenID Connect Token Hash Algorithms 1.0).
 * openid-client runs the flow and validates the ID token (signature included); the expected hash is
 * computed here with WebCrypto, independently of Deputy's code.
 */

const HASH = { ES256: 'SHA-256', EdDSA: 'SHA-512' } as const

async function expectedAtHash(alg: keyof typeof HASH, accessToken: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest(HASH[alg], new TextEncoder().encode(accessToken)),
  )
  return Buffer.from(digest.subarray(0, digest.length / 2)).toString('base64url')
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  describe(`OIDC Core §3.1.3.6 at_hash with ${alg} ID tokens (openid-client)`, () => {
    let env: InteropDeputy

    beforeAll(async () => {
      env = await startInteropDeputy({
        webClientAuth: 'client_secret_basic',
        config: { signingAlg: alg },
      })
    })

    afterAll(async () => {
      await env?.close()
    })

    it(`binds the ID token to the access token of the same response (${HASH[alg]})`, async () => {
      const config = await client.discovery(
        new URL(env.issuer),
        env.publicClient.clientId,
        undefined,
        client.None(),
        { execute: [client.allowInsecureRequests] },
      )
      client.enableNonRepudiationChecks(config)
      const pkceCodeVerifier = client.randomPKCECodeVerifier()
      const state = client.randomState()
      const nonce = client.randomNonce()
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: env.publicClient.redirectUri,
        scope: 'openid profile shop:order',
        code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        resource: RESOURCE.uri,
      })
      const browser = await signInAndConsent(url, env.publicClient.redirectUri, PERSON, 'allow')
      const tokens = await client.authorizationCodeGrant(
        config,
        browser.callback,
        { pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
        { resource: RESOURCE.uri },
      )
      const idToken = tokens.id_token as string
      expect(decodeProtectedHeader(idToken).alg).toBe(alg)
      const claims = tokens.claims()
      expect(claims?.at_hash).toBe(await expectedAtHash(alg, tokens.access_token))
      // A hash of any other token does not match: the claim binds this one token.
      expect(claims?.at_hash).not.toBe(await expectedAtHash(alg, `${tokens.access_token}x`))
      // The refreshed access token comes without an ID token (nothing to bind).
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string)
      expect(refreshed.id_token).toBeUndefined()
    })
  })
}
