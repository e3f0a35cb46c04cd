import { createServer } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import type { Actor } from '../../src/audit/types.js'
import type { ConfigInput } from '../../src/config/schema.js'
import { createRoles } from '../../src/identity/roles.js'
import type { User } from '../../src/identity/users.js'
import type { Clock } from '../../src/lib/clock.js'
import { listen, type RunningServer } from '../../src/server.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

/**
 * One real Deputy on a real socket for the interop suites (issue 3 §8): the issuer is its own
 * http://127.0.0.1:<port> URL, byte for byte, so the independent clients' issuer checks (RFC 8414
 * §3.3, RFC 9207 §2) run unmodified. Everything is seeded through Deputy's own registries, the way
 * an operator would with the CLI; the flows themselves only ever go through HTTP.
 */

const ACTOR: Actor = { type: 'system', id: 'interop-test' }

export const PERSON = {
  email: 'ada@example.com',
  name: 'Ada Lovelace',
  password: 'a-long-interop-password-1',
  favoriteSong: 'Careless Whisper',
}

export const ROLE = { name: 'shopper', permissions: ['shop:buy'] }

/** The protected resource (an MCP server) tokens are minted for: `aud` of every access token. */
export const RESOURCE = {
  uri: 'https://shop.example/mcp',
  name: 'Shirt shop',
  scopes: { 'shop:order': 'Order shirts for you', 'shop:read': 'See your orders' },
  claimsTemplate: ['name', 'email', 'roles', 'permissions', 'favorite_song'],
}

/** A second resource, so a token for the wrong audience can be asked for. */
export const OTHER_RESOURCE = {
  uri: 'https://calendar.example/mcp',
  name: 'Calendar',
  scopes: { 'calendar:read': 'See your calendar' },
  claimsTemplate: ['email'],
}

/** Scope of the resource server client that may introspect any token (src/oauth/introspect.ts). */
export const INTROSPECT_SCOPE = 'deputy:introspect'

export interface InteropDeputy {
  issuer: string
  deputy: TestDeputy
  server: RunningServer
  user: User
  /** A native app: public client, loopback redirect, `none` at the token endpoint. */
  publicClient: { clientId: string; redirectUri: string }
  /** A web app: confidential client with a secret (basic or post, as the suite asks). */
  webClient: { clientId: string; clientSecret: string; redirectUri: string }
  /** An agent acting as itself with a secret (client_credentials, client_secret_basic). */
  secretAgent: { clientId: string; clientSecret: string }
  /** An agent acting as itself with a key pair (client_credentials, private_key_jwt, ES256). */
  keyAgent: { clientId: string; privateKey: CryptoKey; kid: string }
  /** A resource server allowed to introspect any token (client_secret_basic). */
  resourceServer: { clientId: string; clientSecret: string }
  close(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export async function startInteropDeputy(options: {
  webClientAuth: 'client_secret_basic' | 'client_secret_post'
  /** Further settings (the signing algorithm, lifetimes). */
  config?: ConfigInput
  /** A clock the test moves (default: the real one). */
  clock?: Clock
}): Promise<InteropDeputy> {
  // The issuer must equal the URL the clients discover, so the port is chosen before Deputy starts.
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const deputy = await startTestDeputy({
    config: { ...options.config, issuer, host: '127.0.0.1', port },
    ...(options.clock && { clock: options.clock }),
  })
  let server: RunningServer
  try {
    server = await listen(deputy, { port, host: '127.0.0.1' })
  } catch (err) {
    await deputy.dispose()
    throw err
  }
  const { deps } = deputy
  try {
    if (server.url !== issuer) throw new Error(`listening on ${server.url}, issuer is ${issuer}`)

    await createRoles(deps).add(
      { name: ROLE.name, description: 'Buys shirts', permissions: ROLE.permissions },
      ACTOR,
    )
    const user = await deps.users.create(
      {
        email: PERSON.email,
        name: PERSON.name,
        password: PERSON.password,
        roles: [ROLE.name],
        claims: { favorite_song: PERSON.favoriteSong },
      },
      ACTOR,
    )
    await deps.resources.put({ ...RESOURCE, isDefault: true }, ACTOR)
    await deps.resources.put({ ...OTHER_RESOURCE, isDefault: false }, ACTOR)

    const publicRedirect = `http://127.0.0.1:${await freePort()}/callback`
    const { client: publicClient } = await deps.clients.register(
      {
        name: 'Interop native app',
        public: true,
        applicationType: 'native',
        redirectUris: [publicRedirect],
        grantTypes: ['authorization_code', 'refresh_token'],
      },
      ACTOR,
    )

    const webRedirect = 'https://app.example/oauth/callback'
    const web = await deps.clients.register(
      {
        name: 'Interop web app',
        redirectUris: [webRedirect],
        grantTypes: ['authorization_code', 'refresh_token'],
        tokenEndpointAuthMethod: options.webClientAuth,
      },
      ACTOR,
    )

    const secretAgent = await deps.clients.register(
      {
        name: 'Interop agent (secret)',
        grantTypes: ['client_credentials'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        allowedScopes: ['shop:order'],
      },
      ACTOR,
    )

    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const kid = 'interop-agent-key-1'
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
    const keyAgent = await deps.clients.register(
      {
        name: 'Interop agent (key)',
        grantTypes: ['client_credentials'],
        tokenEndpointAuthMethod: 'private_key_jwt',
        jwks: { keys: [jwk] },
        allowedScopes: ['shop:order', 'shop:read'],
      },
      ACTOR,
    )

    const resourceServer = await deps.clients.register(
      {
        name: 'Interop resource server',
        grantTypes: ['client_credentials'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        allowedScopes: [INTROSPECT_SCOPE],
      },
      ACTOR,
    )

    const secret = (created: { clientSecret?: string }) => {
      if (!created.clientSecret) throw new Error('a confidential client was created without secret')
      return created.clientSecret
    }

    return {
      issuer,
      deputy,
      server,
      user,
      publicClient: { clientId: publicClient.clientId, redirectUri: publicRedirect },
      webClient: {
        clientId: web.client.clientId,
        clientSecret: secret(web),
        redirectUri: webRedirect,
      },
      secretAgent: { clientId: secretAgent.client.clientId, clientSecret: secret(secretAgent) },
      keyAgent: { clientId: keyAgent.client.clientId, privateKey, kid },
      resourceServer: {
        clientId: resourceServer.client.clientId,
        clientSecret: secret(resourceServer),
      },
      async close() {
        await server.shutdown()
        await deputy.database.dispose()
      },
    }
  } catch (err) {
    await server.shutdown()
    await deputy.database.dispose()
    throw err
  }
}
