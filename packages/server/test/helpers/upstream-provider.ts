import { generateKeyPairSync, randomBytes } from 'node:crypto'
import Provider, { type ClientInstance, type KoaContextWithOIDC } from 'oidc-provider'
import type { AddProviderInput } from '../../src/providers/types.js'
import { CookieJar } from './sign-in.js'
import { isLoopback, listen, Store } from './upstream-store.js'

/**
 * A real OpenID provider (node-oidc-provider) on http://127.0.0.1:<random port>, standing in for
 * Google / Okta / Entra in the tests of sign-in through upstream providers and connected accounts
 * (issue 12). Nothing about the protocol is switched off: state, nonce, PKCE (required, S256),
 * RFC 9207 `iss` in the authorization response, client authentication, refresh-token rotation
 * with reuse detection are the library's own. Only the person is scripted: the interaction page
 * signs in the chosen account and consents at once, so a test drives the flow with plain fetch.
 *
 *   const upstream = await startUpstreamProvider({ accessTokenTtl: 2 })
 *   upstream.issuer                 // 'http://127.0.0.1:PORT' (discovery at /.well-known/openid-configuration)
 *   upstream.clientId / clientSecret  // one confidential client; client_secret_basic AND _post accepted
 *   upstream.redirectUris.push(uri)   // allowed redirect URIs; empty = any http://127.0.0.1|localhost URI
 *   upstream.loginAs = 'bob-sub'      // who signs in at the next authorizations (sticky; default: the
 *                                     // login_hint's account if it names one by id or email, else the first)
 *   upstream.denyNext()               // the next interaction ends with error=access_denied
 *   const back = await followUpstreamLogin(authorizationUrl)  // → URL of the redirect to the client's
 *                                     // callback (code, state, iss), or (error, state, iss)
 *   upstream.counts                   // { authorization, token, authorizationCode, refresh, refreshRejected,
 *                                     //   revocation, introspection, userinfo, injected }
 *   upstream.failTokenRequests(2)     // the next 2 token-endpoint requests answer 503 temporarily_unavailable
 *   upstream.revokeGrants('alice-sub')  // every grant of the account and its tokens gone: refresh → invalid_grant
 *   upstream.expireAccessTokens()     // every issued access token is expired now (no sleeping needed;
 *                                     // the client still believes its expires_in)
 *   upstream.live('alice-sub')        // { grants, accessTokens, refreshTokens } the account still holds
 *                                     // (refreshTokens: unused ones; 0 after a revocation or revokeGrants)
 *   upstream.tokenValues('alice-sub') // every access/refresh token value issued, to look for in a DB file
 *   upstream.providerInput({ name: 'acme', uses: ['connect'] })  // an AddProviderInput for Deputy
 *   upstream.introspect(token)        // RFC 7662 as the resource server sees it (used by upstream-api.ts)
 *   upstream.accounts                 // Map id → UpstreamAccount, editable between flows
 *   await upstream.close()
 *
 * Each followUpstreamLogin starts with a fresh cookie jar unless given one, so every flow signs
 * in anew as `loginAs`; with a kept jar the provider's session (and its account) is reused.
 * Other processes (several Deputy replicas) may call it too: it is plain HTTP, and the counts,
 * kept where the fixture was started, include every caller's requests.
 *
 * Access tokens are opaque; resource servers check them at the introspection endpoint with
 * `resourceServer` credentials (upstream.resourceServer.{clientId,clientSecret}). Refresh tokens are
 * issued on every code grant (no offline_access scope or prompt=consent needed); rotated unless
 * `rotateRefreshTokens: false`. ID tokens carry the email and profile claims (as Google's do)
 * unless `claimsInIdToken: false` (then only userinfo has them).
 */

export interface UpstreamAccount {
  id: string
  email?: string
  email_verified?: boolean
  name?: string
  /** More claims the account has (preferred_username, picture, …). */
  [claim: string]: unknown
}

export interface UpstreamProviderOptions {
  accounts?: UpstreamAccount[]
  /** Allowed redirect URIs; empty or absent: any http://127.0.0.1:* or http://localhost:* URI. */
  redirectUris?: string[]
  /** Seconds an access token lives (default 60). */
  accessTokenTtl?: number
  /** Seconds a refresh token lives (default one day). */
  refreshTokenTtl?: number
  /** Rotate refresh tokens at each use (default true); a reused rotated token revokes the grant. */
  rotateRefreshTokens?: boolean
  /** Email and profile claims in the ID token too (default true). */
  claimsInIdToken?: boolean
  clientId?: string
  clientSecret?: string
}

export interface UpstreamCounts {
  /** Authorization requests received. */
  authorization: number
  /** Token-endpoint requests received, whatever their outcome (injected failures included). */
  token: number
  /** authorization_code grants served. */
  authorizationCode: number
  /** refresh_token grants served (successful). */
  refresh: number
  /** refresh_token grants refused by the provider (invalid_grant …). */
  refreshRejected: number
  revocation: number
  introspection: number
  userinfo: number
  /** Token requests answered by failTokenRequests. */
  injected: number
}

export const defaultAccounts: UpstreamAccount[] = [
  { id: 'alice-sub', email: 'alice@example.com', email_verified: true, name: 'Alice' },
  { id: 'bob-sub', email: 'bob@example.com', email_verified: true, name: 'Bob' },
  { id: 'mallory-sub', email: 'mallory@example.com', email_verified: false, name: 'Mallory' },
]

export type UpstreamProvider = Awaited<ReturnType<typeof startUpstreamProvider>>

export async function startUpstreamProvider(options: UpstreamProviderOptions = {}) {
  const store = new Store()
  let callback: (req: never, res: never) => void = (
    _req,
    res: { statusCode: number; end(): void },
  ) => {
    res.statusCode = 503
    res.end()
  }
  const { server, port } = await listen((req, res) => callback(req, res))
  const issuer = `http://127.0.0.1:${port}`
  const clientId = options.clientId ?? 'deputy-test-client'
  const clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url')
  const resourceServer = {
    clientId: 'upstream-api',
    clientSecret: randomBytes(24).toString('base64url'),
  }
  const accounts = new Map((options.accounts ?? defaultAccounts).map((a) => [a.id, { ...a }]))
  const redirectUris = [...(options.redirectUris ?? [])]
  const counts: UpstreamCounts = {
    authorization: 0,
    token: 0,
    authorizationCode: 0,
    refresh: 0,
    refreshRejected: 0,
    revocation: 0,
    introspection: 0,
    userinfo: 0,
    injected: 0,
  }
  const control = {
    loginAs: undefined as string | undefined,
    deny: undefined as string | undefined,
    failures: [] as { status: number; error: string }[],
  }
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    format: 'jwk',
  })
  const claimsInIdToken = options.claimsInIdToken ?? true

  const provider = new Provider(issuer, {
    adapter: (name: string) => store.adapter(name),
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        // Patched below to accept client_secret_post too; redirect URIs are checked by the patch.
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/placeholder'],
      },
      {
        client_id: resourceServer.clientId,
        client_secret: resourceServer.clientSecret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [{ ...signingKey, kid: 'upstream-test', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'picture', 'given_name', 'family_name'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    conformIdTokenClaims: !claimsInIdToken,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        // The stand-in API introspects any token; a client only its own.
        allowedPolicy: (
          _ctx: unknown,
          caller: { clientId: string },
          token: { clientId?: string },
        ) => caller.clientId === resourceServer.clientId || token.clientId === caller.clientId,
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    ttl: {
      AccessToken: options.accessTokenTtl ?? 60,
      RefreshToken: options.refreshTokenTtl ?? 86_400,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 86_400,
      Grant: 86_400,
    },
    issueRefreshToken: async (_ctx: unknown, client: ClientInstance) =>
      client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => options.rotateRefreshTokens ?? true,
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    async findAccount(_ctx: unknown, sub: string) {
      const account = accounts.get(sub)
      if (!account) return undefined
      return {
        accountId: sub,
        async claims() {
          const { id, ...claims } = account
          return { ...claims, sub: id }
        },
      }
    },
    renderError(ctx: KoaContextWithOIDC, out: unknown) {
      ctx.type = 'json'
      ctx.body = out
    },
  })

  // One client, both secret methods: which one a request uses decides the registered method.
  const clientProto = provider.Client.prototype as object
  const original = Object.getOwnPropertyDescriptor(clientProto, 'clientAuthMethod')?.get
  Object.defineProperty(clientProto, 'clientAuthMethod', {
    configurable: true,
    get(this: { clientId: string }) {
      if (this.clientId === clientId) {
        const ctx = Provider.ctx
        const basic = ctx?.get('authorization').toLowerCase().startsWith('basic ')
        return basic || ctx === undefined ? 'client_secret_basic' : 'client_secret_post'
      }
      return original?.call(this)
    },
  })
  const originalRedirect = provider.Client.prototype.redirectUriAllowed
  provider.Client.prototype.redirectUriAllowed = function (
    this: { clientId: string },
    uri: string,
  ) {
    if (this.clientId !== clientId) return originalRedirect.call(this, uri)
    return redirectUris.length === 0 ? isLoopback(uri) : redirectUris.includes(uri)
  }

  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = ctx.oidc.params?.grant_type
    if (grantType === 'refresh_token') counts.refresh++
    if (grantType === 'authorization_code') counts.authorizationCode++
  })
  provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') counts.refreshRejected++
  })

  provider.use(async (ctx, next) => {
    const path = ctx.path
    if (path === '/auth') counts.authorization++
    if (path === '/token/revocation') counts.revocation++
    if (path === '/token/introspection') counts.introspection++
    if (path === '/me') counts.userinfo++
    if (path === '/token') {
      counts.token++
      const failure = control.failures.shift()
      if (failure) {
        counts.injected++
        ctx.status = failure.status
        ctx.type = 'json'
        ctx.body = { error: failure.error, error_description: 'injected by the test fixture' }
        return
      }
    }
    if (path.startsWith('/interaction/')) {
      await interact(ctx)
      return
    }
    await next()
  })

  /** The scripted person: signs in the chosen account and consents to what is asked. */
  async function interact(ctx: KoaContextWithOIDC) {
    const details = await provider.interactionDetails(ctx.req, ctx.res)
    let result: Record<string, unknown>
    if (control.deny !== undefined) {
      result = { error: control.deny, error_description: 'the person declined' }
      control.deny = undefined
    } else if (details.prompt.name === 'login') {
      const hint = String(details.params.login_hint ?? '')
      const hinted = [...accounts.values()].find((a) => a.id === hint || a.email === hint)
      const accountId = control.loginAs ?? hinted?.id ?? [...accounts.keys()][0]
      if (!accountId || !accounts.has(accountId))
        throw new Error(`no upstream account ${accountId}`)
      result = { login: { accountId } }
    } else {
      const accountId = details.session?.accountId
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: String(details.params.client_id) })
      if (!grant) throw new Error('grant of the interaction not found')
      const missing = details.prompt.details as {
        missingOIDCScope?: string[]
        missingOIDCClaims?: string[]
        missingResourceScopes?: Record<string, string[]>
      }
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims)
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '))
      }
      result = { consent: { grantId: await grant.save() } }
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: false,
    })
    ctx.status = 303
    ctx.redirect(returnTo)
  }

  callback = provider.callback() as never

  return {
    issuer,
    url: issuer,
    provider,
    clientId,
    clientSecret,
    resourceServer,
    accounts,
    redirectUris,
    counts,
    /** Who signs in at the next authorizations (sticky); undefined = login_hint's or the first account. */
    get loginAs() {
      return control.loginAs
    },
    set loginAs(id: string | undefined) {
      control.loginAs = id
    },
    /** The next interaction ends with this error (default access_denied) instead of signing in. */
    denyNext(error = 'access_denied') {
      control.deny = error
    },
    /** The next `n` token-endpoint requests fail with `status` (default 503 temporarily_unavailable). */
    failTokenRequests(n = 1, status = 503, error = 'temporarily_unavailable') {
      for (let i = 0; i < n; i++) control.failures.push({ status, error })
    },
    /** Revokes every grant of the account with its codes, access and refresh tokens. */
    revokeGrants: (accountId: string): number => store.revokeAccount(accountId),
    /** Makes every access token issued so far expired, as if its lifetime had passed. */
    expireAccessTokens: (): number => store.expireAccessTokens(),
    /** Every access and refresh token value issued (of one account), used or not: to look for in a database file. */
    tokenValues: (accountId?: string): string[] => store.tokenValues(accountId),
    /** What the account still holds at the provider: grants, access tokens, unused refresh tokens. */
    live: (accountId: string) => store.live(accountId),
    /** How to register this provider in Deputy (providers registry / admin API), as an OpenID type. */
    providerInput(input: Partial<AddProviderInput> = {}): AddProviderInput {
      return { name: 'upstream', type: 'oidc', clientId, clientSecret, issuer, ...input }
    },
    /** RFC 7662 introspection with the resource server's credentials. */
    async introspect(token: string): Promise<Record<string, unknown> & { active: boolean }> {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${resourceServer.clientId}:${resourceServer.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token }).toString(),
      })
      if (!response.ok) throw new Error(`introspection answered ${response.status}`)
      return (await response.json()) as Record<string, unknown> & { active: boolean }
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    },
  }
}

/**
 * Follows an authorization URL through the provider's pages as a browser would (cookies kept,
 * redirects followed by hand) until the provider redirects away from itself, and returns that
 * redirect: the client's callback URL with code, state and iss (or error). `jar` keeps the
 * provider's session between flows (pass the same jar to sign in again without a new login).
 */
export async function followUpstreamLogin(
  authorizationUrl: string | URL,
  jar = new CookieJar(),
): Promise<URL> {
  let url = new URL(authorizationUrl)
  const origin = url.origin
  for (let hop = 0; hop < 20; hop++) {
    const response = await fetch(url, {
      redirect: 'manual',
      headers: jar.cookies.size > 0 ? { cookie: jar.header() } : {},
    })
    jar.store(response)
    const location = response.headers.get('location')
    if (response.status < 300 || response.status >= 400 || !location) {
      throw new Error(
        `upstream answered ${response.status} at ${url.pathname}: ${await response.text()}`,
      )
    }
    await response.body?.cancel()
    url = new URL(location, url)
    if (url.origin !== origin) return url
  }
  throw new Error('too many redirects at the upstream provider')
}
