import {
  checkDpopProof,
  DPOP_ALGORITHMS,
  type DpopReplayCache,
  dpopReplayCache,
} from '@deputy/mcp/dpop'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { OAuthError } from './errors.js'

// DPoP (RFC 9449) at the token endpoint: the proof is checked by the same code as at the resource
// servers (@deputy/mcp), the nonces are Deputy's own (§8).

/** `dpop_signing_alg_values_supported` (RFC 9449 §5.1): the proof algorithms accepted. */
export const DPOP_SIGNING_ALGS: readonly string[] = DPOP_ALGORITHMS

/** How long a nonce is given out for; one from the window before is still taken. */
const NONCE_WINDOW_SECONDS = 300

const NONCE_AAD = 'deputy:dpop-nonce'

/**
 * Server-provided nonces (RFC 9449 §8): the current time window, sealed. Any replica opens what
 * another sealed (one master key), so nothing is stored or shared; a nonce is taken in its own
 * window and the next, so from 5 to 10 minutes. A proof without one, or with a stale one, is
 * answered `use_dpop_nonce` with a fresh one, which a client retries with once. The nonce bounds
 * how long a proof made in advance (by someone with the key for a moment) can be used.
 */
export function dpopNonces(deps: { sealer: Sealer; clock: Clock }) {
  let issued: { window: number; nonce: string } | undefined
  const windowOf = () => Math.floor(deps.clock.now().getTime() / 1000 / NONCE_WINDOW_SECONDS)
  return {
    current(): string {
      const window = windowOf()
      if (issued?.window !== window) {
        issued = { window, nonce: deps.sealer.seal(String(window), NONCE_AAD) }
      }
      return issued.nonce
    },
    accepts(nonce: string | undefined): boolean {
      if (nonce === undefined || nonce.length > 512) return false
      let window: number
      try {
        window = Number(deps.sealer.open(nonce, NONCE_AAD))
      } catch {
        return false
      }
      const now = windowOf()
      return window === now || window === now - 1
    },
  }
}

export type DpopNonces = ReturnType<typeof dpopNonces>

/** What checking a token request's proof needs. */
export interface TokenEndpointDpopDeps {
  sealer: Sealer
  clock: Clock
}

/**
 * The DPoP check of the token endpoint (RFC 9449 §5): no `DPoP` header, no binding (undefined);
 * otherwise a proof for `POST <token endpoint>` with a nonce Deputy gave out, whose key the tokens
 * are bound to. A refused proof is `invalid_dpop_proof`, a missing or stale nonce `use_dpop_nonce`,
 * both with a fresh `DPoP-Nonce`.
 */
export function tokenEndpointDpop(deps: TokenEndpointDpopDeps, tokenEndpoint: string) {
  const nonces = dpopNonces(deps)
  const replay: DpopReplayCache = dpopReplayCache()
  return {
    /** The header to send with every answer to a request that carried a proof. */
    nonceHeader: (): Record<string, string> => ({ 'DPoP-Nonce': nonces.current() }),

    /** The thumbprint of the proof's key, or undefined when the request carried no proof. */
    async check(header: string | undefined): Promise<string | undefined> {
      if (header === undefined) return undefined
      const proof = await checkDpopProof(header, {
        method: 'POST',
        urls: [tokenEndpoint],
        nonce: nonces.accepts,
        replay,
        now: deps.clock.now(),
      })
      if (proof.ok) return proof.jkt
      const headers = { 'DPoP-Nonce': nonces.current() }
      if (proof.reason === 'nonce') {
        throw new OAuthError('use_dpop_nonce', 'the DPoP proof must carry the nonce given', {
          reason: 'dpop-nonce',
          headers,
        })
      }
      throw new OAuthError('invalid_dpop_proof', 'the DPoP proof is not valid', {
        reason: `dpop-${proof.reason}`,
        headers,
      })
    },
  }
}

export type TokenEndpointDpop = ReturnType<typeof tokenEndpointDpop>
