import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose'
import { z } from 'zod'
import { identityFromClaims } from '../identity.js'
import { sha256Base64url } from '../sha256.js'
import { JwksUnavailableError, remoteJwks } from './jwks-cache.js'
import {
  type AccessTokenVerifier,
  type Clock,
  type FetchLike,
  rejected,
  type TokenCheck,
} from './types.js'

/** Options of {@link jwtVerifier}. */
export interface JwtVerifierOptions {
  /** The authorization server's issuer identifier; `iss` must equal it exactly. */
  issuer: string
  /** This resource's identifier; `aud` must be exactly this value (RFC 8707 §2). */
  audience: string
  /** Where the issuer publishes its keys (`jwks_uri` in its RFC 8414 metadata). */
  jwksUri?: string
  /** A fixed JWK Set instead of `jwksUri`. */
  jwks?: JSONWebKeySet
  /** Leeway for `exp`, `nbf` and `iat`; small, because tokens are short-lived. Default 30. */
  clockToleranceSeconds?: number
  /** Accepted `typ` header; RFC 9068 §4 says `at+jwt`. Default `at+jwt`. */
  typ?: string
  /** Accepted signature algorithms. Default: asymmetric ones only. */
  algorithms?: string[]
  /** Refetch the JWKS after this long. Default 600. */
  jwksCacheMaxAgeSeconds?: number
  /** At most one refetch per this many seconds for an unknown `kid`. Default 30. */
  jwksCooldownSeconds?: number
  /** Timeout of one JWKS fetch. Default 5000. */
  jwksTimeoutMs?: number
  /**
   * How many successful verifications to remember (keyed by the SHA-256 of the token, never the
   * token), so a token presented again skips the signature check. An entry is used only while the
   * token would still pass the time checks (`exp`, `nbf`, with the clock tolerance), for at most
   * `jwksCacheMaxAgeSeconds` after it was verified, and never after the JWKS was reloaded. Default
   * 1000; 0 turns the cache off.
   */
  verificationCacheSize?: number
  fetch?: FetchLike
  clock?: Clock
}

// Symmetric algorithms are left out on purpose: a resource server holding an HMAC key could mint
// tokens itself, and a JWKS never needs to carry one (RFC 8725 §3.1). DPoP proofs accept the same
// list (dpop.ts: RFC 9449 §4.2 forbids `none` and symmetric algorithms there too).
export const ASYMMETRIC = [
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
]

const optionsSchema = z
  .object({
    issuer: z.string().min(1),
    audience: z.string().min(1),
    jwksUri: z.url().optional(),
    jwks: z
      .object({ keys: z.array(z.record(z.string(), z.unknown())) })
      .loose()
      .optional(),
    clockToleranceSeconds: z.number().min(0).max(300).optional(),
    typ: z.string().min(1).optional(),
    algorithms: z.array(z.enum(ASYMMETRIC)).min(1).optional(),
    jwksCacheMaxAgeSeconds: z.number().positive().optional(),
    jwksCooldownSeconds: z.number().min(0).optional(),
    jwksTimeoutMs: z.number().positive().optional(),
    verificationCacheSize: z.number().int().min(0).max(1_000_000).optional(),
    fetch: z.custom<FetchLike>((value) => typeof value === 'function').optional(),
    clock: z.custom<Clock>((value) => typeof value === 'function').optional(),
  })
  .strict()
  .refine((value) => (value.jwksUri === undefined) !== (value.jwks === undefined), {
    message: 'give exactly one of jwksUri or jwks',
  })

function failure(error: unknown): TokenCheck {
  if (error instanceof JwksUnavailableError) return rejected('unavailable', error.message)
  if (error instanceof errors.JWTExpired) return rejected('expired')
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return rejected('issuer')
      case 'typ':
        return rejected('type')
      case 'nbf':
      case 'iat':
        return rejected('not_yet_valid')
      default:
        return rejected('claims', error.claim)
    }
  }
  if (error instanceof errors.JWKSNoMatchingKey) return rejected('unknown_key')
  if (error instanceof errors.JOSEAlgNotAllowed) return rejected('algorithm')
  if (error instanceof errors.JWSSignatureVerificationFailed) return rejected('signature')
  if (error instanceof errors.JOSEError) return rejected('malformed', error.code)
  throw error
}

/** Freezes verified claims all the way down: a cached identity is shared between requests. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

interface CachedVerification {
  readonly check: TokenCheck
  /** jose's time checks, replayed on every hit: `exp > now - tolerance`, `nbf <= now + tolerance`. */
  readonly exp: number
  readonly nbf: number | undefined
  /** Epoch ms after which the entry is dropped whatever `exp` says (the JWKS cache age). */
  readonly until: number
  /** The key-set generation the signature was checked against. */
  readonly generation: number
}

/**
 * Verifies RFC 9068 JWT access tokens offline: signature through the issuer's JWKS (cached,
 * refetched on an unknown `kid`, rate-limited), `typ`, `iss`, `exp`/`nbf` with a small tolerance,
 * and `aud` equal to exactly this resource. A token carrying several audiences is refused too: any
 * of the other audiences could replay it here (RFC 8707 §2, MCP authorization "Token Handling").
 */
export function jwtVerifier(options: JwtVerifierOptions): AccessTokenVerifier {
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success) throw new TypeError(`jwtVerifier: ${z.prettifyError(parsed.error)}`)
  const clock = options.clock ?? (() => new Date())
  const jwksCacheMaxAgeSeconds = options.jwksCacheMaxAgeSeconds ?? 600
  // Bumped whenever the JWKS is (re)loaded: cached verifications made against older keys are
  // dropped. Hits skip the key lookup, so the reload that notices a removed key may not happen;
  // entries therefore also end `jwksCacheMaxAgeSeconds` after their own check. Bound: a token
  // signed with a removed key is accepted at most `jwksCacheMaxAgeSeconds` longer than without
  // this cache (which itself honours it until the JWKS it holds is that old).
  let generation = 0
  const cacheSize = options.verificationCacheSize ?? 1000
  const cache = new Map<string, CachedVerification>()
  const keys: JWTVerifyGetKey =
    options.jwks !== undefined
      ? createLocalJWKSet(options.jwks)
      : remoteJwks({
          uri: new URL(options.jwksUri as string),
          fetch: options.fetch ?? globalThis.fetch,
          clock,
          cacheMaxAgeSeconds: jwksCacheMaxAgeSeconds,
          cooldownSeconds: options.jwksCooldownSeconds ?? 30,
          timeoutMs: options.jwksTimeoutMs ?? 5000,
          onKeys: () => {
            generation++
            cache.clear()
          },
        })
  const verifyOptions = {
    issuer: options.issuer,
    typ: options.typ ?? 'at+jwt',
    algorithms: options.algorithms ?? ASYMMETRIC,
    clockTolerance: options.clockToleranceSeconds ?? 30,
    requiredClaims: ['exp', 'sub'],
  }

  const tolerance = verifyOptions.clockTolerance

  return async (token) => {
    const key = cacheSize > 0 ? await sha256Base64url(token) : undefined
    const now = clock()
    if (key !== undefined) {
      const hit = cache.get(key)
      if (hit !== undefined) {
        const nowMs = now.getTime()
        const seconds = Math.floor(nowMs / 1000)
        if (
          hit.generation === generation &&
          nowMs < hit.until &&
          hit.exp > seconds - tolerance &&
          (hit.nbf === undefined || hit.nbf <= seconds + tolerance)
        ) {
          return hit.check
        }
        // Stale: verify again from scratch, which also reports why it no longer passes.
        cache.delete(key)
      }
    }
    // Read before the keys are resolved: a reload racing this check leaves the entry stale.
    const keysGeneration = generation
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, keys, { ...verifyOptions, currentDate: now }))
    } catch (error) {
      return failure(error)
    }
    const aud = payload.aud
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
    if (audiences.length !== 1 || audiences[0] !== options.audience) return rejected('audience')
    const identity = identityFromClaims(deepFreeze(payload) as Record<string, unknown>)
    if (identity === undefined) return rejected('claims', 'sub')
    const check: TokenCheck = Object.freeze({ ok: true, identity })
    if (key !== undefined && typeof payload.exp === 'number') {
      // Only successes are remembered; a refused token is checked in full every time.
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string)
      cache.set(key, {
        check,
        exp: payload.exp,
        nbf: typeof payload.nbf === 'number' ? payload.nbf : undefined,
        until: now.getTime() + jwksCacheMaxAgeSeconds * 1000,
        generation: keysGeneration,
      })
    }
    return check
  }
}
