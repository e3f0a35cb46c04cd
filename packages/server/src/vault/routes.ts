import { type Context, Hono } from 'hono'
import type { Actor } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { CONTENT_SECURITY_POLICY } from '../http/middleware.js'
import type { RateLimits } from '../http/rate-limits.js'
import { signInHref } from '../identity/return-to.js'
import { type CurrentSession, readSession, type SessionDeps } from '../identity/sessions.js'
import { hasNul } from '../lib/form.js'
import { safeEqual } from '../lib/random.js'
import { isRateLimited } from '../lib/rate-limit.js'
import type { Provider, Providers, UpstreamProfile } from '../providers/types.js'
import { connectConfirmPage, connectionsPage } from '../ui/connections.js'
import { messagePage } from '../ui/message-page.js'
import { checkReturnTo, type ReturnToClient } from './return-to.js'
import type { Vault } from './types.js'

/**
 * The provider flows of providers/flows.ts as the connect flow uses them (begin at the link,
 * take back exactly once at the callback), declared structurally so this module names only
 * what it calls.
 */
export interface ConnectFlows {
  begin(
    kind: 'connect',
    provider: string,
    input: { userId: string; clientId: string | null; scopes: string[]; returnTo: string | null },
  ): Promise<{ state: string; codeVerifier: string; nonce: string }>
  take(
    state: string,
    expect: { kind: 'connect'; provider: string },
  ): Promise<
    | {
        status: 'ok'
        flow: {
          userId: string | null
          scopes: string[]
          returnTo: string | null
          codeVerifier: string
          nonce: string
        }
      }
    | { status: 'unknown' }
    | { status: 'expired' }
  >
}

/** What the connection pages and the connect flow use. */
export interface VaultRoutesDeps extends SessionDeps {
  config: Pick<ResolvedConfig, 'sessionTtlSeconds' | 'issuer'>
  vault: Vault
  providers: Pick<Providers, 'get' | 'list' | 'authorizationUrl' | 'redeemCallback' | 'profile'>
  providerFlows: ConnectFlows
  clients: { get(clientId: string): Promise<ReturnToClient | undefined> }
  /** The per-person limit on connections started (`connectRateLimit`). */
  rateLimits: Pick<RateLimits, 'take'>
}

/** RFC 6749 §3.3 scope-token characters. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/

function noStore(
  c: Context<AppEnv>,
  page: string,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return c.html(page, status as 200, { 'Cache-Control': 'no-store', ...headers })
}

/**
 * The CSP of a page with connect forms: `form-action` widened to the providers' authorization
 * endpoints, since Chromium checks it on every redirect after a form submission (CSP3 §6.3.1.2)
 * and the POST answers with a 303 to the provider.
 */
function connectFormPolicy(providers: Provider[]): Record<string, string> {
  const origins = new Set<string>()
  for (const p of providers) {
    try {
      const url = new URL(p.endpoints.authorization_endpoint)
      if ((url.protocol === 'https:' || url.protocol === 'http:') && !url.hostname.startsWith('['))
        origins.add(url.origin)
    } catch {
      // A provider without a usable endpoint gets no connect button that could work anyway.
    }
  }
  if (origins.size === 0) return {}
  return {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY.replace(
      "form-action 'self'",
      `form-action 'self' ${[...origins].join(' ')}`,
    ),
  }
}

function refusal(c: Context<AppEnv>, status: number, title: string, text: string): Response {
  return noStore(
    c,
    messagePage({
      title,
      text,
      link: { href: '/account/connections', label: 'Your connected accounts' },
    }),
    status,
  )
}

const connectable = (p: Provider) => p.status === 'active' && p.uses.includes('connect')

/**
 * Connected accounts (issue 12 §3): `/account/connections` (see, connect, disconnect), the
 * connect link `/connect/<provider>?scope=…&return_to=…&client_id=…` an agent or MCP server
 * hands the person, and the provider's callback.
 */
export function createVaultRoutes(deps: VaultRoutesDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const callbackUri = (name: string) =>
    new URL(`/connect/${encodeURIComponent(name)}/callback`, deps.config.issuer).toString()
  const actorOf = (session: CurrentSession): Actor => ({
    type: 'user',
    id: session.user.id,
    label: session.user.email,
  })
  const toLogin = (c: Context<AppEnv>) => {
    const here = new URL(c.req.url)
    return c.redirect(signInHref(here.pathname + here.search), 303)
  }

  /** A form post from one of Deputy's pages: urlencoded, signed in, the session's CSRF token. */
  async function formOf(c: Context<AppEnv>) {
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/x-www-form-urlencoded')
      return {
        error: refusal(c, 415, 'Not done', 'This address accepts only a submitted web form.'),
      }
    const session = await readSession(deps, c.req.raw)
    if (!session) return { error: c.redirect(signInHref('/account/connections'), 303) }
    const form = new URLSearchParams(await c.req.text())
    const sent = form.get('csrf_token')
    if (form.getAll('csrf_token').length !== 1 || !sent || !safeEqual(sent, session.csrfToken))
      return {
        error: refusal(
          c,
          403,
          'Not done',
          'This form has expired or did not come from Deputy. Reload the page and try again.',
        ),
      }
    return { session, form }
  }

  /** The checks a connect request passes before anything is stored or redirected. */
  async function connectRequest(
    c: Context<AppEnv>,
    name: string,
    params: { scope?: string; returnTo?: string; clientId?: string },
  ) {
    const provider = hasNul(name) ? null : await deps.providers.get(name)
    if (!provider || !connectable(provider))
      return {
        error: refusal(c, 404, 'Cannot connect', `There is no ${name} account to connect here.`),
      }
    const asked = (params.scope ?? '').split(' ').filter((s) => s !== '')
    if (asked.some((s) => !SCOPE_TOKEN.test(s)))
      return {
        error: refusal(c, 400, 'Cannot connect', 'The link asks for a scope that is not valid.'),
      }
    const clientId = params.clientId && !hasNul(params.clientId) ? params.clientId : undefined
    const client = clientId ? await deps.clients.get(clientId) : undefined
    const checked = checkReturnTo(params.returnTo, client, clientId)
    if (!checked.ok) return { error: refusal(c, 400, 'Cannot connect', checked.reason) }
    return {
      provider,
      asked,
      client: client ?? null,
      clientId: clientId ?? null,
      returnTo: checked.returnTo,
    }
  }

  app.get('/account/connections', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return toLogin(c)
    const providers = await deps.providers.list()
    const names = new Map(providers.map((p) => [p.name, p.displayName]))
    const connections = await deps.vault.list(session.user.id)
    const say = (key: string, text: (name: string) => string) => {
      const value = c.req.query(key)
      return value && names.has(value) ? text(names.get(value) as string) : undefined
    }
    const notice =
      say('connected', (n) => `Your ${n} account is connected.`) ??
      say('disconnected', (n) => `Your ${n} account is disconnected.`)
    return noStore(
      c,
      connectionsPage({
        connections: connections.map((x) => ({
          provider: x.provider,
          providerName: names.get(x.provider) ?? x.provider,
          accountLabel: x.accountLabel,
          scopes: x.scopes,
          status: x.status,
          createdAt: x.createdAt,
          lastUsedAt: x.lastUsedAt,
        })),
        connectable: providers.filter(connectable),
        csrfToken: session.csrfToken,
        ...(notice ? { notice } : {}),
      }),
      200,
      connectFormPolicy(providers.filter(connectable)),
    )
  })

  app.post('/account/connections/disconnect', async (c) => {
    const got = await formOf(c)
    if ('error' in got) return got.error
    const provider = got.form.get('provider')
    if (!provider || got.form.getAll('provider').length !== 1 || hasNul(provider))
      return refusal(c, 400, 'Not disconnected', 'Choose which account to disconnect.')
    const done = await deps.vault.disconnect(got.session.user.id, provider, actorOf(got.session))
    if (!done) return refusal(c, 404, 'Not disconnected', 'That account is not connected.')
    return c.redirect(`/account/connections?disconnected=${encodeURIComponent(provider)}`, 303)
  })

  // The connect link: checked, then a page to confirm (nothing starts on a GET).
  app.get('/connect/:provider', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return toLogin(c)
    const checked = await connectRequest(c, c.req.param('provider'), {
      scope: c.req.query('scope'),
      returnTo: c.req.query('return_to'),
      clientId: c.req.query('client_id'),
    })
    if ('error' in checked) return checked.error
    const existing = await deps.vault.get(session.user.id, checked.provider.name)
    return noStore(
      c,
      connectConfirmPage({
        provider: checked.provider,
        clientName: checked.client?.name ?? null,
        scopes: scopesFor(checked.provider, existing?.scopes ?? [], checked.asked),
        returnTo: checked.returnTo,
        clientId: checked.clientId,
        csrfToken: session.csrfToken,
      }),
      200,
      connectFormPolicy([checked.provider]),
    )
  })

  app.post('/connect/:provider', async (c) => {
    const got = await formOf(c)
    if ('error' in got) return got.error
    const one = (k: string) =>
      got.form.getAll(k).length === 1 ? (got.form.get(k) ?? undefined) : undefined
    const checked = await connectRequest(c, c.req.param('provider'), {
      scope: one('scope'),
      returnTo: one('return_to'),
      clientId: one('client_id'),
    })
    if ('error' in checked) return checked.error
    const { provider } = checked
    // Each start stores a redirect for ten minutes: counted per person.
    try {
      await deps.rateLimits.take('connect', got.session.user.id)
    } catch (err) {
      if (!isRateLimited(err)) throw err
      return noStore(
        c,
        messagePage({
          title: 'Not now',
          text: `You started many connections in a short time. Try again in ${err.retryAfterSeconds} seconds.`,
          link: { href: '/account/connections', label: 'Your connected accounts' },
        }),
        429,
        { 'Retry-After': String(err.retryAfterSeconds) },
      )
    }
    const existing = await deps.vault.get(got.session.user.id, provider.name)
    // A reconnect keeps what the connection had: the new tokens replace the old ones.
    const scopes = scopesFor(provider, existing?.scopes ?? [], checked.asked)
    const flow = await deps.providerFlows.begin('connect', provider.name, {
      userId: got.session.user.id,
      clientId: checked.clientId,
      scopes,
      returnTo: checked.returnTo,
    })
    const url = await deps.providers.authorizationUrl(provider, {
      redirectUri: callbackUri(provider.name),
      state: flow.state,
      codeVerifier: flow.codeVerifier,
      nonce: flow.nonce,
      scopes,
    })
    return c.redirect(url.toString(), 303)
  })

  app.get('/connect/:provider/callback', async (c) => {
    const name = c.req.param('provider')
    const state = c.req.query('state')
    if (!state || hasNul(state) || hasNul(name))
      return refusal(
        c,
        400,
        'Not connected',
        'This link is not a complete answer from the provider.',
      )
    const session = await readSession(deps, c.req.raw)
    const taken = await deps.providerFlows.take(state, { kind: 'connect', provider: name })
    if (taken.status !== 'ok')
      return refusal(
        c,
        400,
        'Not connected',
        taken.status === 'expired'
          ? 'Connecting took too long. Start again.'
          : 'This answer from the provider was already used or does not belong to a connection started here. Start again.',
      )
    const { flow } = taken
    // The flow belongs to the person who started it, in this browser.
    if (!session || session.user.id !== flow.userId)
      return refusal(
        c,
        403,
        'Not connected',
        'This connection was started by someone else, or you signed out meanwhile. Start again.',
      )
    const provider = await deps.providers.get(name)
    if (!provider || !connectable(provider))
      return refusal(c, 404, 'Not connected', `There is no ${name} account to connect here.`)
    if (c.req.query('error') !== undefined)
      return refusal(
        c,
        400,
        'Not connected',
        `${provider.displayName} did not connect your account (you declined, or it refused).`,
      )
    const here = new URL(c.req.url)
    const currentUrl = new URL(`${here.pathname}${here.search}`, deps.config.issuer)
    let tokens: Awaited<ReturnType<VaultRoutesDeps['providers']['redeemCallback']>>
    try {
      tokens = await deps.providers.redeemCallback(provider, {
        currentUrl,
        redirectUri: callbackUri(provider.name),
        expectedState: state,
        codeVerifier: flow.codeVerifier,
        nonce: flow.nonce,
      })
    } catch (err) {
      c.get('logger')?.warn(
        { provider: name, code: (err as { code?: string }).code },
        'connect callback refused',
      )
      return refusal(
        c,
        502,
        'Not connected',
        `${provider.displayName} did not complete the connection. Try again.`,
      )
    }
    let profile: UpstreamProfile | null = null
    try {
      profile = await deps.providers.profile(provider, tokens)
    } catch (err) {
      // The account label is for the person's eyes; the tokens are what the agents need.
      c.get('logger')?.warn(
        { provider: name, code: (err as { code?: string }).code },
        'connect profile unavailable',
      )
    }
    await deps.vault.connect(
      {
        userId: session.user.id,
        provider: provider.name,
        tokens,
        requestedScopes: flow.scopes,
        accountSubject: profile?.subject ?? null,
        accountLabel: profile?.label ?? profile?.email ?? null,
      },
      actorOf(session),
    )
    return c.redirect(
      flow.returnTo ?? `/account/connections?connected=${encodeURIComponent(provider.name)}`,
      303,
    )
  })

  return app
}

/** What a connect asks the provider for: its defaults, what the connection has, what was asked. */
function scopesFor(provider: Provider, existing: string[], asked: string[]): string[] {
  return [...new Set([...provider.scopes, ...existing, ...asked])]
}
