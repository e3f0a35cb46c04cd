// A stand-in authorization server, in the runner's process: an ES256 key, its JWKS and RFC 8414
// metadata on 127.0.0.1, and RFC 9068 access tokens minted for any audience. The protected
// servers fetch the JWKS once and cache it, so serving it from here costs the runs nothing.
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export async function startIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const kid = randomBytes(8).toString('base64url')
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] }
  let issuer = ''
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname
    const body =
      path === '/jwks'
        ? jwks
        : path === '/.well-known/oauth-authorization-server' ||
            path === '/.well-known/openid-configuration'
          ? {
              issuer,
              jwks_uri: `${issuer}/jwks`,
              token_endpoint: `${issuer}/token`,
              response_types_supported: ['code'],
              grant_types_supported: ['client_credentials'],
              token_endpoint_auth_methods_supported: ['client_secret_basic'],
            }
          : undefined
    response.statusCode = body === undefined ? 404 : 200
    response.setHeader('content-type', 'application/json')
    response.end(body === undefined ? '{"error":"not_found"}' : JSON.stringify(body))
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  issuer = `http://127.0.0.1:${server.address().port}`

  /** An RFC 9068 access token (typ at+jwt, ES256) for `audience`, valid for an hour. */
  function mint(audience, { scope, ...claims } = {}) {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT({ client_id: 'bench-agent', scope, ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .setIssuer(issuer)
      .setSubject('bench-user')
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .setJti(randomUUID())
      .sign(privateKey)
  }

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    mint,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
