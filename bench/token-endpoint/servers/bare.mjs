// The practical limit: hono + @hono/node-server, parse the form, check the client secret in
// constant time, sign the same JWT access token with jose. No storage, no audit, no policy.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { announce, failStart, freePort, RESOURCE } from '../lib/common.mjs'

try {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const clientId = 'bench-cc'
  const clientSecret = randomBytes(32).toString('base64url')
  const secretHash = createHash('sha256').update(clientSecret).digest()
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const kid = randomBytes(8).toString('base64url')
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] }

  const oauthError = (c, status, error) =>
    c.json({ error }, status, {
      'Cache-Control': 'no-store',
      ...(status === 401 ? { 'WWW-Authenticate': 'Basic realm="token"' } : {}),
    })

  /** The client id when the Basic credentials match, else undefined. */
  function authenticate(header) {
    if (!header?.startsWith('Basic ')) return undefined
    const decoded = Buffer.from(header.slice(6), 'base64').toString()
    const colon = decoded.indexOf(':')
    if (colon < 0) return undefined
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
    const secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
    const given = createHash('sha256').update(secret).digest()
    return timingSafeEqual(given, secretHash) && id === clientId ? id : undefined
  }

  const app = new Hono()
  app.get('/jwks', (c) => c.json(jwks))
  app.post('/token', async (c) => {
    const type = c.req.header('content-type') ?? ''
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      return oauthError(c, 400, 'invalid_request')
    }
    const form = new URLSearchParams(await c.req.text())
    const client = authenticate(c.req.header('authorization'))
    if (!client) return oauthError(c, 401, 'invalid_client')
    if (form.get('grant_type') !== 'client_credentials') {
      return oauthError(c, 400, 'unsupported_grant_type')
    }
    const resource = form.get('resource') ?? RESOURCE
    if (resource !== RESOURCE) return oauthError(c, 400, 'invalid_target')
    const now = Math.floor(Date.now() / 1000)
    const accessToken = await new SignJWT({ client_id: client })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .setIssuer(issuer)
      .setSubject(client)
      .setAudience(resource)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(privateKey)
    return c.json({ access_token: accessToken, token_type: 'Bearer', expires_in: 600 }, 200, {
      'Cache-Control': 'no-store',
    })
  })

  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' })
  await new Promise((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  announce(
    {
      name: 'bare',
      label: 'hono + jose (bare)',
      url: issuer,
      issuer,
      tokenPath: '/token',
      jwksPath: '/jwks',
      clientId,
      clientSecret,
    },
    () => new Promise((resolve) => server.close(() => resolve())),
  )
} catch (err) {
  failStart(err)
}
