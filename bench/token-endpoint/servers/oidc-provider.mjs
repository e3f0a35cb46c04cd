// node-oidc-provider configured like Deputy: client_credentials, JWT access tokens (resource
// indicators, ES256), a confidential client with client_secret_basic, one resource. For the
// authorization-code scenario: a second client and a custom interaction handler that signs the
// bench user in and grants consent without pages (devInteractions off).
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { exportJWK, generateKeyPair } from 'jose'
import Provider, { errors } from 'oidc-provider'
import { announce, failStart, freePort, REDIRECT_URI, RESOURCE, SCOPE } from '../lib/common.mjs'

try {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const signingKey = {
    ...(await exportJWK(privateKey)),
    kid: randomBytes(8).toString('base64url'),
    alg: 'ES256',
    use: 'sig',
  }
  const cc = { clientId: 'bench-cc', clientSecret: randomBytes(32).toString('base64url') }
  const web = { clientId: 'bench-web', clientSecret: randomBytes(32).toString('base64url') }
  const accountId = 'bench-user'

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: cc.clientId,
        client_secret: cc.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: web.clientId,
        client_secret: web.clientSecret,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget()
          return {
            scope: SCOPE,
            audience: RESOURCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          }
        },
      },
    },
  })

  /** The bench user's "pages": sign in, then grant what was asked, then resume the request. */
  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res)
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId } },
        {
          mergeWithLastSubmission: false,
        },
      )
      return
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id })
    const missing = details.prompt.details
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '))
    }
    const grantId = await grant.save()
    await provider.interactionFinished(
      req,
      res,
      { consent: { grantId } },
      {
        mergeWithLastSubmission: true,
      },
    )
  }

  const callback = provider.callback()
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => {
        res.statusCode = 500
        res.end(String(err?.message ?? err))
      })
      return
    }
    callback(req, res)
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  announce(
    {
      name: 'oidc',
      label: 'oidc-provider',
      url: issuer,
      issuer,
      tokenPath: '/token',
      jwksPath: '/jwks',
      clientId: cc.clientId,
      clientSecret: cc.clientSecret,
      authorizationCode: {
        authorizePath: '/auth',
        clientId: web.clientId,
        clientSecret: web.clientSecret,
      },
    },
    () => new Promise((resolve) => server.close(() => resolve())),
  )
} catch (err) {
  failStart(err)
}
