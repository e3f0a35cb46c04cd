import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { AddProviderInput } from '../../src/providers/types.js'

/**
 * A GitHub-shaped OAuth 2.0 server on http://127.0.0.1:<random port> for the `github` provider
 * type (GitHub is not OpenID: no discovery, no ID token; who the person is comes from /user and
 * /user/emails). Shapes follow GitHub's documentation: the token endpoint answers JSON only when
 * asked (`Accept: application/json`, else form-encoded), and its errors come with HTTP 200
 * (`bad_verification_code`, `incorrect_client_credentials`, `redirect_uri_mismatch`); API errors
 * are `{ message, documentation_url }` with 401 "Bad credentials". One server plays both
 * github.com and api.github.com.
 *
 *   const gh = await startFakeGitHub({ users: [...] })   // default users: octocat, hubot (unverified email)
 *   gh.clientId / gh.clientSecret
 *   gh.endpoints   // { authorization_endpoint, token_endpoint, user_api, emails_api, revocation_endpoint }
 *                  // in the shape of ProviderEndpoints, to override the catalogue's github.com ones
 *   gh.providerInput({ uses: ['sign-in'] })  // an AddProviderInput for Deputy (type github, endpoints here)
 *   gh.loginAs = 'hubot'      // who authorizes at the next /login/oauth/authorize (sticky; default the first)
 *   gh.denyNext()             // the next authorize redirects back with error=access_denied
 *   const back = await followGitHubLogin(authorizeUrl)   // → the client's callback URL (code, state)
 *   gh.counts      // { authorize, token, refresh, user, emails, revocation, injected }
 *   gh.failTokenRequests(n)   // the next n token requests answer 503
 *   gh.expireAccessTokens()   // every access token issued so far is refused by the API from now on
 *   gh.users       // Map login → GitHubUser, editable (emails list with primary/verified flags)
 *   await gh.close()
 *
 * Tokens: `gho_…` access tokens that do not expire (an OAuth app), unless `expiringTokens` is set
 * (a GitHub App's user tokens: `ghu_…` with expires_in, and `ghr_…` refresh tokens, rotated at
 * each grant_type=refresh_token, a reused one answers `bad_refresh_token`). PKCE: when the
 * authorize request had a code_challenge (S256 only), the code needs its code_verifier.
 * /user/emails needs the `user:email` (or `user`) scope, as on GitHub (404 without).
 * DELETE /applications/<client_id>/grant (Basic client_id:client_secret, JSON { access_token })
 * revokes every token of that user for the app: 204; DELETE …/token revokes just that token.
 */

export interface GitHubEmail {
  email: string
  primary: boolean
  verified: boolean
  visibility: 'public' | 'private' | null
}

export interface GitHubUser {
  id: number
  login: string
  name: string | null
  /** The public profile email (null when the person keeps it private). */
  email: string | null
  emails: GitHubEmail[]
}

export interface FakeGitHubOptions {
  users?: GitHubUser[]
  clientId?: string
  clientSecret?: string
  /** Issue expiring user tokens with refresh tokens (a GitHub App), lifetime in seconds. */
  expiringTokens?: { accessTokenTtl: number }
}

export const defaultGitHubUsers: GitHubUser[] = [
  {
    id: 583231,
    login: 'octocat',
    name: 'The Octocat',
    email: null,
    emails: [
      { email: 'octocat@example.com', primary: true, verified: true, visibility: 'private' },
      { email: 'octo@old.example.com', primary: false, verified: false, visibility: null },
    ],
  },
  {
    id: 9919,
    login: 'hubot',
    name: 'Hubot',
    email: 'hubot@example.com',
    emails: [{ email: 'hubot@example.com', primary: true, verified: false, visibility: 'public' }],
  },
]

export type FakeGitHub = Awaited<ReturnType<typeof startFakeGitHub>>

const docs = 'https://docs.github.com/rest'

interface Code {
  login: string
  clientId: string
  redirectUri: string | undefined
  scope: string
  challenge: string | undefined
  expires: number
}

interface Token {
  login: string
  scope: string
  /** Epoch ms, or null for a token that does not expire. */
  expires: number | null
  refresh?: string
}

function secretEquals(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startFakeGitHub(options: FakeGitHubOptions = {}) {
  const clientId = options.clientId ?? `Iv1.${randomBytes(8).toString('hex')}`
  const clientSecret = options.clientSecret ?? randomBytes(20).toString('hex')
  const users = new Map(
    (options.users ?? defaultGitHubUsers).map((u) => [u.login, structuredClone(u)]),
  )
  const codes = new Map<string, Code>()
  const tokens = new Map<string, Token>()
  const refreshTokens = new Map<string, { login: string; scope: string; used: boolean }>()
  const counts = {
    authorize: 0,
    token: 0,
    refresh: 0,
    user: 0,
    emails: 0,
    revocation: 0,
    injected: 0,
  }
  const control = { loginAs: undefined as string | undefined, deny: false, failures: 0 }

  function issue(login: string, scope: string) {
    const ttl = options.expiringTokens?.accessTokenTtl
    const accessToken = `${ttl === undefined ? 'gho' : 'ghu'}_${randomBytes(18).toString('base64url')}`
    const token: Token = {
      login,
      scope,
      expires: ttl === undefined ? null : Date.now() + ttl * 1000,
    }
    tokens.set(accessToken, token)
    const answer: Record<string, string | number> = {
      access_token: accessToken,
      token_type: 'bearer',
      scope,
    }
    if (ttl !== undefined) {
      const refresh = `ghr_${randomBytes(30).toString('base64url')}`
      refreshTokens.set(refresh, { login, scope, used: false })
      token.refresh = refresh
      Object.assign(answer, {
        expires_in: ttl,
        refresh_token: refresh,
        refresh_token_expires_in: 15_897_600,
      })
    }
    return answer
  }

  function bearer(req: IncomingMessage): Token | undefined {
    const match = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '')
    const token = match?.[1] ? tokens.get(match[1]) : undefined
    if (!token || (token.expires !== null && token.expires <= Date.now())) return undefined
    return token
  }

  function basicClient(req: IncomingMessage): boolean {
    const match = /^Basic (\S+)$/i.exec(req.headers.authorization ?? '')
    if (!match?.[1]) return false
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return (
      decoded.slice(0, colon) === clientId && secretEquals(decoded.slice(colon + 1), clientSecret)
    )
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', base)
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
      res.end(body === undefined ? '' : JSON.stringify(body))
    }
    const path = url.pathname

    if (req.method === 'GET' && path === '/login/oauth/authorize') {
      counts.authorize++
      const p = url.searchParams
      if (p.get('client_id') !== clientId) return json(404, { error: 'Not Found' })
      const redirectUri = p.get('redirect_uri') ?? undefined
      if (!redirectUri) return json(400, { error: 'redirect_uri is required by this fake' })
      const back = new URL(redirectUri)
      const state = p.get('state')
      if (state !== null) back.searchParams.set('state', state)
      const method = p.get('code_challenge_method')
      if (p.get('code_challenge') && method !== null && method !== 'S256') {
        back.searchParams.set('error', 'invalid_request')
        back.searchParams.set('error_description', 'code_challenge_method must be S256')
      } else if (control.deny) {
        control.deny = false
        back.searchParams.set('error', 'access_denied')
        back.searchParams.set('error_description', 'The user has denied your application access.')
      } else {
        const login = control.loginAs ?? [...users.keys()][0]
        if (!login || !users.has(login)) return json(500, { error: `no fake GitHub user ${login}` })
        const code = randomBytes(10).toString('hex')
        codes.set(code, {
          login,
          clientId,
          redirectUri,
          scope: (p.get('scope') ?? '').split(/[ ,]+/).filter(Boolean).join(','),
          challenge: p.get('code_challenge') ?? undefined,
          expires: Date.now() + 600_000,
        })
        back.searchParams.set('code', code)
      }
      res.writeHead(302, { location: back.toString() })
      res.end()
      return
    }

    if (req.method === 'POST' && path === '/login/oauth/access_token') {
      counts.token++
      const params = new URLSearchParams(await readBody(req))
      const wantsJson = (req.headers.accept ?? '').includes('application/json')
      const answer = (body: Record<string, string | number>) => {
        if (wantsJson) return json(200, body)
        res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' })
        res.end(
          new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString(),
        )
      }
      const error = (code: string, description: string) =>
        answer({ error: code, error_description: description, error_uri: `${docs}#${code}` })
      if (control.failures > 0) {
        control.failures--
        counts.injected++
        return json(503, { message: 'Service Unavailable (injected by the test fixture)' })
      }
      let id = params.get('client_id') ?? ''
      let secret = params.get('client_secret') ?? ''
      const basic = /^Basic (\S+)$/i.exec(req.headers.authorization ?? '')
      if (basic?.[1]) {
        const decoded = Buffer.from(basic[1], 'base64').toString('utf8')
        id = decoded.slice(0, decoded.indexOf(':'))
        secret = decoded.slice(decoded.indexOf(':') + 1)
      }
      if (id !== clientId || !secretEquals(secret, clientSecret)) {
        return error(
          'incorrect_client_credentials',
          'The client_id and/or client_secret passed are incorrect.',
        )
      }
      if (params.get('grant_type') === 'refresh_token') {
        const refresh = refreshTokens.get(params.get('refresh_token') ?? '')
        if (!refresh || refresh.used)
          return error('bad_refresh_token', 'The refresh token passed is incorrect or expired.')
        refresh.used = true
        counts.refresh++
        return answer(issue(refresh.login, refresh.scope))
      }
      const code = codes.get(params.get('code') ?? '')
      codes.delete(params.get('code') ?? '')
      if (!code || code.expires <= Date.now() || code.clientId !== id) {
        return error('bad_verification_code', 'The code passed is incorrect or expired.')
      }
      const redirectUri = params.get('redirect_uri')
      if (redirectUri !== null && redirectUri !== code.redirectUri) {
        return error(
          'redirect_uri_mismatch',
          'The redirect_uri MUST match the registered callback URL for this application.',
        )
      }
      if (code.challenge !== undefined) {
        const verifier = params.get('code_verifier') ?? ''
        const computed = createHash('sha256').update(verifier).digest('base64url')
        if (verifier === '' || computed !== code.challenge) {
          return error(
            'bad_verification_code',
            'The code_verifier does not match the code_challenge.',
          )
        }
      }
      return answer(issue(code.login, code.scope))
    }

    const revoke = /^\/applications\/([^/]+)\/(grant|token)$/.exec(path)
    if (req.method === 'DELETE' && revoke) {
      if (revoke[1] !== clientId || !basicClient(req)) {
        return json(404, { message: 'Not Found', documentation_url: docs })
      }
      const body = JSON.parse((await readBody(req)) || '{}') as { access_token?: string }
      const token = body.access_token ? tokens.get(body.access_token) : undefined
      if (!token || !body.access_token)
        return json(404, { message: 'Not Found', documentation_url: docs })
      counts.revocation++
      if (revoke[2] === 'token') {
        tokens.delete(body.access_token)
      } else {
        for (const [value, t] of tokens) if (t.login === token.login) tokens.delete(value)
        for (const [value, r] of refreshTokens)
          if (r.login === token.login) refreshTokens.delete(value)
      }
      res.writeHead(204)
      res.end()
      return
    }

    if (req.method === 'GET' && (path === '/user' || path === '/user/emails')) {
      const token = bearer(req)
      if (path === '/user') counts.user++
      else counts.emails++
      if (!token) return json(401, { message: 'Bad credentials', documentation_url: docs })
      const user = users.get(token.login)
      if (!user) return json(404, { message: 'Not Found', documentation_url: docs })
      const headers = { 'x-oauth-scopes': token.scope.split(',').join(', ') }
      if (path === '/user') {
        return json(
          200,
          {
            login: user.login,
            id: user.id,
            node_id: `MDQ6VXNlcj${user.id}`,
            avatar_url: `${base}/avatars/${user.login}`,
            html_url: `${base}/${user.login}`,
            type: 'User',
            name: user.name,
            email: user.email,
          },
          headers,
        )
      }
      const scopes = token.scope.split(',')
      if (!scopes.includes('user:email') && !scopes.includes('user')) {
        return json(404, { message: 'Not Found', documentation_url: docs }, headers)
      }
      return json(200, user.emails, headers)
    }

    json(404, { message: 'Not Found', documentation_url: docs })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ message: String(error) }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url: base,
    clientId,
    clientSecret,
    users,
    counts,
    endpoints: {
      authorization_endpoint: `${base}/login/oauth/authorize`,
      token_endpoint: `${base}/login/oauth/access_token`,
      user_api: `${base}/user`,
      emails_api: `${base}/user/emails`,
      revocation_endpoint: `${base}/applications/${clientId}/grant`,
    },
    /** How to register this fake in Deputy: the github type with every endpoint pointed here. */
    providerInput(input: Partial<AddProviderInput> = {}): AddProviderInput {
      return {
        name: 'github',
        type: 'github',
        clientId,
        clientSecret,
        endpoints: this.endpoints,
        ...input,
      }
    },
    get loginAs() {
      return control.loginAs
    },
    set loginAs(login: string | undefined) {
      control.loginAs = login
    },
    denyNext() {
      control.deny = true
    },
    failTokenRequests(n = 1) {
      control.failures += n
    },
    expireAccessTokens(): number {
      for (const token of tokens.values()) token.expires = Date.now() - 1000
      return tokens.size
    },
    /** Whether an access token still works at the API (not expired, not revoked). */
    tokenActive(accessToken: string): boolean {
      const token = tokens.get(accessToken)
      return token !== undefined && (token.expires === null || token.expires > Date.now())
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    },
  }
}

/** Follows a GitHub authorize URL to the redirect back to the client (code and state, or error). */
export async function followGitHubLogin(authorizeUrl: string | URL): Promise<URL> {
  const response = await fetch(authorizeUrl, { redirect: 'manual' })
  const location = response.headers.get('location')
  if (response.status !== 302 || !location) {
    throw new Error(`fake GitHub answered ${response.status}: ${await response.text()}`)
  }
  return new URL(location)
}
