import { z } from 'zod'
import { identityFromClaims } from '../identity.js'
import {
  type AccessTokenVerifier,
  type Clock,
  type FetchLike,
  rejected,
  type TokenCheck,
} from './types.js'

/** Options of {@link introspectionVerifier}. */
export interface IntrospectionVerifierOptions {
  /** The authorization server's RFC 7662 introspection endpoint. */
  endpoint: string
  /** This resource's client credentials at the authorization server (RFC 7662 §2.1). */
  clientId: string
  clientSecret: string
  /** This resource's identifier; the response's `aud` must be exactly this value. */
  audience: string
  /** When set, the response's `iss` must equal it. */
  issuer?: string
  /** How long an answer is reused; revocation takes up to this long to be seen. Default 30. */
  cacheSeconds?: number
  /** At most this many answers are kept. Default 10000. */
  cacheMaxEntries?: number
  clockToleranceSeconds?: number
  timeoutMs?: number
  fetch?: FetchLike
  clock?: Clock
}

const optionsSchema = z
  .object({
    endpoint: z.url(),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1),
    audience: z.string().min(1),
    issuer: z.string().min(1).optional(),
    cacheSeconds: z.number().min(0).max(3600).optional(),
    cacheMaxEntries: z.number().int().positive().optional(),
    clockToleranceSeconds: z.number().min(0).max(300).optional(),
    timeoutMs: z.number().positive().optional(),
    fetch: z.custom<FetchLike>((value) => typeof value === 'function').optional(),
    clock: z.custom<Clock>((value) => typeof value === 'function').optional(),
  })
  .strict()

// RFC 7662 §2.2: only `active` is required; everything else is optional and may carry extensions.
const responseSchema = z
  .object({
    active: z.boolean(),
    exp: z.number().optional(),
    nbf: z.number().optional(),
    iss: z.string().optional(),
    aud: z.union([z.string(), z.array(z.string())]).optional(),
    token_type: z.string().optional(),
  })
  .loose()

// RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding.
function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replaceAll('%20', '+')
  return `Basic ${btoa(`${encode(clientId)}:${encode(clientSecret)}`)}`
}

async function cacheKey(token: string): Promise<string> {
  // Cache under a digest so the process never holds a table of live bearer tokens.
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  return btoa(String.fromCharCode(...new Uint8Array(digest)))
}

/**
 * Verifies opaque (or any) access tokens by RFC 7662 introspection, authenticating with
 * `client_secret_basic`, and caches each answer briefly. Refuses inactive tokens, refresh tokens,
 * tokens for another audience or issuer, and expired ones.
 */
export function introspectionVerifier(options: IntrospectionVerifierOptions): AccessTokenVerifier {
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success)
    throw new TypeError(`introspectionVerifier: ${z.prettifyError(parsed.error)}`)
  const fetchImpl = options.fetch ?? globalThis.fetch
  const clock = options.clock ?? (() => new Date())
  const cacheMs = (options.cacheSeconds ?? 30) * 1000
  const maxEntries = options.cacheMaxEntries ?? 10_000
  const tolerance = options.clockToleranceSeconds ?? 30
  const authorization = basicAuthorization(options.clientId, options.clientSecret)
  const cache = new Map<string, { check: TokenCheck; until: number }>()

  async function introspect(token: string): Promise<{ check: TokenCheck; until: number }> {
    const now = clock().getTime()
    let response: Response
    try {
      response = await fetchImpl(options.endpoint, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        redirect: 'error',
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
      })
    } catch (error) {
      return { check: rejected('unavailable', (error as Error).message), until: now }
    }
    const body = responseSchema.safeParse(await response.json().catch(() => undefined))
    if (!response.ok || !body.success) {
      return {
        check: rejected('unavailable', `introspection answered HTTP ${response.status}`),
        until: now,
      }
    }
    const claims = body.data
    const until = now + cacheMs
    if (!claims.active) return { check: rejected('inactive'), until }
    if (claims.token_type !== undefined && /refresh/i.test(claims.token_type)) {
      return { check: rejected('inactive', 'not an access token'), until }
    }
    const nowSeconds = now / 1000
    if (claims.exp !== undefined && claims.exp + tolerance <= nowSeconds) {
      return { check: rejected('expired'), until }
    }
    if (claims.nbf !== undefined && claims.nbf - tolerance > nowSeconds) {
      return { check: rejected('not_yet_valid'), until: now }
    }
    if (options.issuer !== undefined && claims.iss !== options.issuer) {
      return { check: rejected('issuer'), until }
    }
    const audiences = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? [])
    if (audiences.length !== 1 || audiences[0] !== options.audience) {
      return { check: rejected('audience'), until }
    }
    const identity = identityFromClaims(claims)
    if (identity === undefined) return { check: rejected('claims', 'sub'), until }
    // Never reuse an answer past the token's own expiry.
    const expiresAt = claims.exp === undefined ? until : claims.exp * 1000
    return { check: { ok: true, identity }, until: Math.min(until, expiresAt) }
  }

  return async (token) => {
    const key = await cacheKey(token)
    const now = clock().getTime()
    const hit = cache.get(key)
    if (hit !== undefined && hit.until > now) return hit.check
    cache.delete(key)
    const answer = await introspect(token)
    if (answer.until > now) {
      if (cache.size >= maxEntries) {
        // Maps iterate in insertion order: drop the oldest answer.
        const oldest = cache.keys().next().value
        if (oldest !== undefined) cache.delete(oldest)
      }
      cache.set(key, answer)
    }
    return answer.check
  }
}
