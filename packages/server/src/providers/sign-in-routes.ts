import { type Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { RefusalLog } from '../audit/refusals.js'
import type { Actor, AuditEventInput, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { addressKey, type RateLimits } from '../http/rate-limits.js'
import { endReplacedSession } from '../identity/login.js'
import {
  DEFAULT_RETURN_TO,
  LOGIN_CSRF_COOKIE,
  safeReturnTo,
  signInHref,
} from '../identity/return-to.js'
import { setSessionCookie } from '../identity/session-cookie.js'
import { SESSION_COOKIE, type SessionDeps, startSession } from '../identity/sessions.js'
import { safeEqual } from '../lib/random.js'
import { isRateLimited } from '../lib/rate-limit.js'
import { messagePage } from '../ui/message-page.js'
import { findPerson, type PersonRefusal, type ProviderAccountDeps } from './accounts.js'
import { PROVIDER_FLOW_TTL_MS, type ProviderFlows } from './flows.js'
import { type Provider, ProviderError, type Providers } from './types.js'

/**
 * Binds a sign-in flow to the browser that started it: the `state` sent to the provider, kept
 * in this cookie and compared at the callback. Without it an attacker could start a sign-in, let
 * the provider sign *them* in, and hand the callback URL to someone whose browser would then be
 * signed in to the attacker's account (login CSRF, RFC 6749 §10.12).
 */
export const PROVIDER_SIGN_IN_COOKIE = '__Host-deputy-provider-sign-in'

/** What signing in through an upstream provider reads and writes. */
export interface ProviderSignInDeps extends ProviderAccountDeps, Omit<SessionDeps, 'users'> {
  config: Pick<ResolvedConfig, 'issuer' | 'sessionTtlSeconds'>
  audit: AuditLog
  refusals: Pick<RefusalLog, 'record'>
  /** The keyed digest of an email, for records of addresses that belong to no one here. */
  emailDigest(email: string): string
  providers: Pick<Providers, 'get' | 'list' | 'authorizationUrl' | 'redeemCallback' | 'profile'>
  providerFlows: Pick<ProviderFlows, 'begin' | 'take'>
  /** The per-address sign-in limit (`signInRateLimit`), shared with `POST /login`. */
  rateLimits: Pick<RateLimits, 'take'>
}

/** The redirect URI to register at the provider for sign-in. */
export function providerSignInCallback(issuer: string, provider: string): string {
  return `${issuer.replace(/\/+$/, '')}/login/${encodeURIComponent(provider)}/callback`
}

/** True when `provider` signs people in now. */
export function signsIn(provider: Provider): boolean {
  return provider.status === 'active' && provider.uses.includes('sign-in')
}

/** The providers the login page offers, in the registry's order. */
export async function signInProviders(
  providers: Pick<Providers, 'list'>,
): Promise<{ name: string; displayName: string }[]> {
  return (await providers.list())
    .filter(signsIn)
    .map((p) => ({ name: p.name, displayName: p.displayName }))
}

/** Why a sign-in through a provider failed, as `login.failed` records it. */
export type ProviderLoginFailure =
  | PersonRefusal
  | 'state-mismatch'
  | 'unknown-state'
  | 'expired-state'
  | 'provider-disabled'
  | 'provider-error'

/** What the person is told, per failure: one line, and the status it comes with. */
function refusalText(reason: ProviderLoginFailure, provider: Provider, detail?: string) {
  const p = provider.displayName
  switch (reason) {
    case 'unverified-email':
      return {
        status: 403,
        title: 'Email address not verified',
        text: `${p} has not verified your email address, so Deputy cannot tell that it is yours. Verify it at ${p}, then sign in again. Nothing was created or linked.`,
      }
    case 'no-email':
      return {
        status: 403,
        title: 'No email address',
        text: `${p} did not share a verified email address, which Deputy needs to find or create your account. Allow it at ${p} and sign in again.`,
      }
    case 'disabled':
      return {
        status: 403,
        title: 'Account disabled',
        text: 'This account is disabled. Ask the people who run Deputy to enable it.',
      }
    case 'not-created':
      return {
        status: 500,
        title: 'Account not created',
        text: `Deputy could not create an account for you (${detail ?? 'a setting of this provider is wrong'}). Ask the people who run Deputy.`,
      }
    case 'provider-disabled':
      return {
        status: 403,
        title: 'Sign-in turned off',
        text: `Signing in with ${p} is turned off here. Use another way to sign in.`,
      }
    case 'state-mismatch':
      return {
        status: 400,
        title: 'Sign-in not started here',
        text: `This sign-in with ${p} was not started in this browser. Start again from the sign-in page.`,
      }
    case 'unknown-state':
    case 'expired-state':
      return {
        status: 400,
        title: 'Sign-in expired',
        text: `This sign-in with ${p} has expired or was already used. Start again from the sign-in page.`,
      }
    case 'provider-error':
      return detail === 'access_denied'
        ? {
            status: 403,
            title: 'Sign-in cancelled',
            text: `You did not allow the sign-in at ${p}, so you are not signed in.`,
          }
        : {
            status: 400,
            title: 'Sign-in failed',
            text: `${p} did not sign you in, or its answer could not be used. Try again from the sign-in page.`,
          }
  }
}

/** An error code from a provider, fit to show and record (it comes from a URL anyone can craft). */
function errorCode(err: ProviderError): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(err.code) ? err.code : 'invalid_response'
}

/** `/login/<provider>` and its callback: sign in with an upstream provider (issue 12 §2). */
export function createProviderSignInRoutes(deps: ProviderSignInDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

  const page = (
    c: Context<AppEnv>,
    status: number,
    title: string,
    text: string,
    returnTo = DEFAULT_RETURN_TO,
  ) =>
    c.html(
      messagePage({
        title,
        text,
        link: {
          href: signInHref(returnTo),
          label: 'Back to the sign-in page',
        },
      }),
      status as 400,
      { 'Cache-Control': 'no-store' },
    )

  const notOffered = (c: Context<AppEnv>) =>
    page(c, 404, 'No such sign-in', 'Deputy offers no sign-in by that name.')

  /** Records a refused sign-in and answers with its page. */
  async function refuse(
    c: Context<AppEnv>,
    provider: Provider,
    reason: ProviderLoginFailure,
    options: { actor?: Actor; data?: Record<string, unknown>; detail?: string; returnTo?: string },
  ) {
    const event: AuditEventInput = {
      type: 'login.failed',
      actor: options.actor ?? { type: 'user', id: 'unknown' },
      requestId: c.get('requestId') ?? null,
      reason,
      data: {
        method: 'provider',
        provider: provider.name,
        address: c.get('clientAddress') ?? 'unknown',
        ...options.data,
      },
    }
    // Anyone can send a callback with a made-up state, or start a sign-in of their own and come
    // back with `error=access_denied` (or a made-up code the provider refuses): those are
    // summarised (audit/refusals.ts), not written each in full.
    if (
      reason === 'state-mismatch' ||
      reason === 'unknown-state' ||
      reason === 'expired-state' ||
      reason === 'provider-error'
    )
      await deps.refusals.record(event)
    else await deps.audit.append(event)
    deleteCookie(c, PROVIDER_SIGN_IN_COOKIE, { secure: true, path: '/' })
    const shown = refusalText(reason, provider, options.detail)
    return page(c, shown.status, shown.title, shown.text, options.returnTo)
  }

  app.get('/login/:provider', async (c) => {
    const returnTo = safeReturnTo(c.req.query('return_to'))
    const provider = await deps.providers.get(c.req.param('provider'))
    if (!provider?.uses.includes('sign-in')) return notOffered(c)
    if (provider.status !== 'active') {
      const shown = refusalText('provider-disabled', provider)
      return page(c, shown.status, shown.title, shown.text, returnTo)
    }
    // Each start stores a redirect for ten minutes, for anyone who asks: counted per address.
    try {
      await deps.rateLimits.take('sign-in', addressKey(c.get('clientAddress')))
    } catch (err) {
      if (!isRateLimited(err)) throw err
      c.header('Retry-After', String(err.retryAfterSeconds))
      return page(
        c,
        429,
        'Too many sign-ins',
        `Too many sign-in attempts came from your network. Try again in ${err.retryAfterSeconds} seconds.`,
        returnTo,
      )
    }
    const flow = await deps.providerFlows.begin('sign-in', provider.name, {
      scopes: provider.scopes,
      returnTo,
    })
    const url = await deps.providers.authorizationUrl(provider, {
      redirectUri: providerSignInCallback(deps.config.issuer, provider.name),
      state: flow.state,
      codeVerifier: flow.codeVerifier,
      nonce: flow.nonce,
      scopes: provider.scopes,
    })
    setCookie(c, PROVIDER_SIGN_IN_COOKIE, flow.state, {
      secure: true,
      httpOnly: true,
      // Lax: sent on the provider's top-level redirect back to the callback.
      sameSite: 'Lax',
      path: '/',
      maxAge: PROVIDER_FLOW_TTL_MS / 1000,
    })
    c.header('Cache-Control', 'no-store')
    return c.redirect(url.href, 303)
  })

  // Whatever goes wrong past the checks above, the person gets a page, never a stack trace.
  app.onError((err, c) => {
    c.get('logger')?.error({ err, requestId: c.get('requestId') }, 'provider sign-in failed')
    return page(
      c,
      500,
      'Sign-in failed',
      'Something went wrong on our side while signing you in. Try again from the sign-in page.',
    )
  })

  app.get('/login/:provider/callback', async (c) => {
    const provider = await deps.providers.get(c.req.param('provider'))
    if (!provider?.uses.includes('sign-in')) return notOffered(c)
    const state = c.req.query('state') ?? ''
    const bound = getCookie(c, PROVIDER_SIGN_IN_COOKIE)
    if (!state || !bound || !safeEqual(bound, state))
      return refuse(c, provider, 'state-mismatch', {})
    const taken = await deps.providerFlows.take(state, { kind: 'sign-in', provider: provider.name })
    if (taken.status !== 'ok')
      return refuse(c, provider, taken.status === 'expired' ? 'expired-state' : 'unknown-state', {})
    const { flow } = taken
    const returnTo = safeReturnTo(flow.returnTo)
    if (!signsIn(provider)) return refuse(c, provider, 'provider-disabled', { returnTo })

    let profile: Awaited<ReturnType<Providers['profile']>>
    try {
      const tokens = await deps.providers.redeemCallback(provider, {
        currentUrl: new URL(c.req.url),
        redirectUri: providerSignInCallback(deps.config.issuer, provider.name),
        expectedState: state,
        codeVerifier: flow.codeVerifier,
        nonce: flow.nonce,
      })
      profile = await deps.providers.profile(provider, tokens)
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      const code = errorCode(err)
      c.get('logger')?.warn(
        { provider: provider.name, code, requestId: c.get('requestId') },
        'provider sign-in refused',
      )
      return refuse(c, provider, 'provider-error', { data: { code }, detail: code, returnTo })
    }

    const requestId = c.get('requestId') ?? null
    const person = await findPerson(deps, provider, profile, requestId)
    if (!person.ok) {
      const actor: Actor | undefined = person.user
        ? { type: 'user', id: person.user.id, label: person.user.email }
        : undefined
      const email = person.user?.email ?? (profile.email ? deps.emailDigest(profile.email) : null)
      return refuse(c, provider, person.reason, {
        actor,
        data: { subject: profile.subject, ...(email !== null && { email }) },
        detail: person.detail,
        returnTo,
      })
    }

    const { user } = person
    // As with a password: the session the browser came with ends, a fresh one starts (session
    // fixation, OWASP ASVS V3.2.1).
    await endReplacedSession(deps, getCookie(c, SESSION_COOKIE), requestId)
    const session = await startSession(
      deps,
      user.id,
      `provider:${provider.name}`,
      c.req.header('user-agent'),
    )
    await deps.audit.append({
      type: 'login.succeeded',
      actor: { type: 'user', id: user.id, label: user.email },
      target: { type: 'user', id: user.id },
      requestId,
      data: {
        method: 'provider',
        provider: provider.name,
        found: person.found,
        email: user.email,
        address: c.get('clientAddress') ?? 'unknown',
        session: session.idHash.slice(0, 16),
        ...(!person.claimsStored && { claimsStored: false }),
      },
    })
    setSessionCookie(c, session.id, deps.config.sessionTtlSeconds)
    deleteCookie(c, PROVIDER_SIGN_IN_COOKIE, { secure: true, path: '/' })
    deleteCookie(c, LOGIN_CSRF_COOKIE, { secure: true, path: '/' })
    c.header('Cache-Control', 'no-store')
    return c.redirect(returnTo, 303)
  })

  return app
}
