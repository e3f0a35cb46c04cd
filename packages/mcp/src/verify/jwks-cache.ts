import {
  type CryptoKey,
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWTHeaderParameters,
} from 'jose'
import type { Clock, FetchLike } from './types.js'

/** Thrown when the issuer's JWKS cannot be fetched or is not a JWK Set. */
export class JwksUnavailableError extends Error {
  readonly code = 'ERR_JWKS_UNAVAILABLE'
}

/** A key resolver for jose's `jwtVerify`, backed by a cached remote JWK Set. */
export type KeyResolver = (
  header: JWTHeaderParameters,
  token: FlattenedJWSInput,
) => Promise<CryptoKey>

export interface RemoteJwksOptions {
  readonly uri: URL
  readonly fetch: FetchLike
  readonly clock: Clock
  /** Keys are refetched after this long even if every `kid` is known. */
  readonly cacheMaxAgeSeconds: number
  /** At most one refetch per this many seconds when a token names an unknown `kid`. */
  readonly cooldownSeconds: number
  readonly timeoutMs: number
  /** Called after every successful (re)load of the key set, before the new keys are used. */
  readonly onKeys?: () => void
}

function isJwkSet(value: unknown): value is JSONWebKeySet {
  return (
    value !== null &&
    typeof value === 'object' &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((key) => key !== null && typeof key === 'object')
  )
}

/**
 * A JWKS cache that refetches on an unknown `kid` at most once per cooldown, so a flood of tokens
 * with made-up key ids cannot turn this resource into a load generator against the issuer. jose's
 * `createRemoteJWKSet` does the same but reads the wall clock; this one takes the clock and fetch
 * as dependencies so the behaviour is testable, and leaves all key handling to jose.
 */
export function remoteJwks(options: RemoteJwksOptions): KeyResolver {
  let keys: ReturnType<typeof createLocalJWKSet> | undefined
  let fetchedAt = Number.NEGATIVE_INFINITY
  let inflight: Promise<void> | undefined

  async function load(): Promise<void> {
    let response: Response
    try {
      response = await options.fetch(options.uri, {
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'error',
        signal: AbortSignal.timeout(options.timeoutMs),
      })
    } catch (error) {
      throw new JwksUnavailableError(`JWKS fetch failed: ${(error as Error).message}`)
    } finally {
      // Count failed attempts too: an unreachable issuer must not be hammered either.
      fetchedAt = options.clock().getTime()
    }
    if (!response.ok) throw new JwksUnavailableError(`JWKS answered HTTP ${response.status}`)
    const body: unknown = await response.json().catch(() => undefined)
    if (!isJwkSet(body)) throw new JwksUnavailableError('JWKS is not a JWK Set')
    keys = createLocalJWKSet(body)
    options.onKeys?.()
  }

  function refresh(): Promise<void> {
    inflight ??= load().finally(() => {
      inflight = undefined
    })
    return inflight
  }

  const age = () => (options.clock().getTime() - fetchedAt) / 1000

  return async (header, token) => {
    if (keys === undefined || age() > options.cacheMaxAgeSeconds) {
      try {
        await refresh()
      } catch (error) {
        // Stale keys beat no keys while the issuer is briefly unreachable.
        if (keys === undefined) throw error
      }
    }
    const current = keys as ReturnType<typeof createLocalJWKSet>
    try {
      return await current(header, token)
    } catch (error) {
      const code = (error as { code?: string }).code
      if (code !== 'ERR_JWKS_NO_MATCHING_KEY' || age() < options.cooldownSeconds) throw error
      await refresh()
      return (keys as ReturnType<typeof createLocalJWKSet>)(header, token)
    }
  }
}
