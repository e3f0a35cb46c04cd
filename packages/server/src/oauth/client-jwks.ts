import type { JSONWebKeySet } from 'jose'
import { z } from 'zod'
import type { Clock } from '../lib/clock.js'
import { SafeFetchError, type SafeFetchOptions, safeFetch } from '../lib/safe-fetch.js'
import { metadataTtlSeconds } from './cimd.js'

// A client's `jwks_uri` (RFC 7591 §2, OpenID Connect Discovery §3 for the AS side): its public keys
// at a URL the client chose, for private_key_jwt (RFC 7523 §3). Fetched like a metadata document:
// through the SSRF guard, size- and time-bounded, cached per Cache-Control (60 s to 24 h).

/**
 * The shortest time between two fetches of one `jwks_uri` caused by an unknown `kid`: a client
 * that rotated its key is picked up at once, but assertions naming made-up key ids cannot turn
 * Deputy into a fetch amplifier against the client's host.
 */
export const JWKS_REFETCH_MIN_INTERVAL_SECONDS = 60

/** Most `jwks_uri` sets kept in memory; the oldest is dropped first. */
export const MAX_CACHED_SETS = 1_000

const JwksSchema = z.looseObject({
  keys: z
    .array(z.looseObject({ kty: z.string() }))
    .min(1, 'must hold at least one key')
    .max(100),
})

/** Why a client's key set could not be had; `reason` is for the audit chain. */
export class ClientJwksUnavailable extends Error {
  readonly reason: string
  constructor(reason: string) {
    super(reason)
    this.name = 'ClientJwksUnavailable'
    this.reason = reason
  }
}

/** What reading `jwks_uri` key sets needs: the time and the guarded fetch's limits. */
export interface ClientJwksDeps {
  clock: Clock
  fetch: SafeFetchOptions
}

interface Cached {
  jwks: JSONWebKeySet
  fetchedAt: number
  expiresAt: number
}

/**
 * Client key sets by `jwks_uri`, per process. A cached set is used until it expires; an assertion
 * whose `kid` the cached set lacks refetches it, at most once per
 * `JWKS_REFETCH_MIN_INTERVAL_SECONDS`. Concurrent requests for one URL share one fetch. A failed
 * fetch fails closed (no keys, no authentication) and is not cached.
 */
export function createClientJwks(deps: ClientJwksDeps) {
  const cache = new Map<string, Cached>()
  const inFlight = new Map<string, Promise<Cached>>()

  async function fetchSet(uri: string): Promise<Cached> {
    let response: Awaited<ReturnType<typeof safeFetch>>
    try {
      response = await safeFetch(uri, deps.fetch)
    } catch (err) {
      throw new ClientJwksUnavailable(
        `jwks_uri ${err instanceof SafeFetchError ? err.reason : 'fetch failed'}`,
      )
    }
    if (response.status !== 200)
      throw new ClientJwksUnavailable(`jwks_uri answered ${response.status}`)
    let parsed: z.infer<typeof JwksSchema>
    try {
      parsed = JwksSchema.parse(JSON.parse(response.body))
    } catch {
      throw new ClientJwksUnavailable('jwks_uri is not a JWK Set')
    }
    const now = deps.clock.now().getTime()
    const entry: Cached = {
      jwks: parsed as unknown as JSONWebKeySet,
      fetchedAt: now,
      expiresAt: now + metadataTtlSeconds(response.headers['cache-control']) * 1000,
    }
    cache.delete(uri)
    if (cache.size >= MAX_CACHED_SETS) {
      const oldest = cache.keys().next()
      if (!oldest.done) cache.delete(oldest.value)
    }
    cache.set(uri, entry)
    return entry
  }

  function refetch(uri: string): Promise<Cached> {
    let pending = inFlight.get(uri)
    if (!pending) {
      pending = fetchSet(uri).finally(() => inFlight.delete(uri))
      inFlight.set(uri, pending)
    }
    return pending
  }

  return {
    /**
     * The key set at `uri` for verifying an assertion signed with `kid` (absent: any key).
     * Throws `ClientJwksUnavailable` when no set can be had.
     */
    async keysFor(uri: string, kid: string | undefined): Promise<JSONWebKeySet> {
      const now = deps.clock.now().getTime()
      const cached = cache.get(uri)
      if (!cached || cached.expiresAt <= now) return (await refetch(uri)).jwks
      const known = kid === undefined || cached.jwks.keys.some((k) => k.kid === kid)
      if (known) return cached.jwks
      // RFC 7517 §4.5 / OpenID Connect Core §10.1.1: an unknown kid may mean the client rotated.
      if (now - cached.fetchedAt < JWKS_REFETCH_MIN_INTERVAL_SECONDS * 1000) return cached.jwks
      return (await refetch(uri)).jwks
    },
  }
}

export type ClientJwks = ReturnType<typeof createClientJwks>
