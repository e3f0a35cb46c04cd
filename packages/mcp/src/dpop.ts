import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  errors,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from 'jose'
import { sha256Base64url } from './sha256.js'
import { ASYMMETRIC } from './verify/jwt.js'

// Also `@deputy/mcp/dpop`: an authorization server checks proofs without loading the MCP SDK.
export { ASYMMETRIC }

// RFC 9449 (DPoP) proof checking, shared by the kit's gate, Deputy's gateway and Deputy's token
// endpoint: one implementation of §4.3, so the authorization server and every resource server
// judge a proof alike.

/** RFC 9449 §4.2: the `typ` of a DPoP proof. */
export const DPOP_PROOF_TYP = 'dpop+jwt'

/**
 * The proof algorithms accepted (`dpop_signing_alg_values_supported`, the `algs` of the
 * challenge): asymmetric only (RFC 9449 §4.2: MUST NOT be `none` or a symmetric algorithm).
 */
export const DPOP_ALGORITHMS: readonly string[] = Object.freeze([...ASYMMETRIC])

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

/** Why a DPoP proof was refused: stable codes for logs and tests, `invalid_dpop_proof` on the wire. */
export type DpopProofRejection =
  /** No `DPoP` header, or several (RFC 9449 §4.3 check 1: exactly one). */
  | 'missing'
  | 'multiple'
  /** Not a JWT, or its header or claims are not what §4.2 asks for. */
  | 'malformed'
  | 'type'
  | 'algorithm'
  /** No public key in the `jwk` header, or one carrying private parts. */
  | 'key'
  | 'signature'
  | 'method'
  | 'url'
  /** `iat` outside the accepted window. */
  | 'iat'
  /** A `jti` seen before within the window. */
  | 'replay'
  /** `ath` missing or not the hash of the access token presented with it. */
  | 'ath'
  /** The proof's key is not the one the access token is bound to (`cnf.jkt`). */
  | 'key_mismatch'
  /** The server wants a (fresh) nonce: answered with `use_dpop_nonce` and a `DPoP-Nonce`. */
  | 'nonce'

export type DpopProofCheck =
  | { readonly ok: true; readonly jkt: string; readonly jti: string }
  | { readonly ok: false; readonly reason: DpopProofRejection }

/**
 * The `jti` values already used (RFC 9449 §11.1), each for as long as its proof could be
 * accepted. Bounded: when full, the oldest entry goes, so a replay could pass only after more
 * than `maxEntries` fresh, fully checked proofs arrived within one window. A resource checks the
 * proof after the access token, so filling it takes valid tokens.
 */
export interface DpopReplayCache {
  /** Records `key` until `expiresAt` (epoch ms); false when it was already there. */
  remember(key: string, expiresAt: number, now: number): boolean
}

export function dpopReplayCache(maxEntries = 100_000): DpopReplayCache {
  const seen = new Map<string, number>()
  return {
    remember(key, expiresAt, now) {
      const until = seen.get(key)
      if (until !== undefined && until > now) return false
      seen.delete(key)
      // Insertion order is expiry order (one window for all), so expired entries are at the front.
      for (const [oldest, oldestUntil] of seen) {
        if (oldestUntil > now && seen.size < maxEntries) break
        seen.delete(oldest)
      }
      seen.set(key, expiresAt)
      return true
    },
  }
}

/**
 * RFC 9449 §4.3 check 9: `htu` is compared without query and fragment, after syntax- and
 * scheme-based normalisation (RFC 3986 §6.2.2, §6.2.3): the WHATWG URL parser lowercases scheme
 * and host, drops a default port and resolves dot segments. Undefined for what is no URL.
 */
export function normalizeHtu(url: string | URL): string | undefined {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname || '/'}`
  } catch {
    return undefined
  }
}

/** What one proof is checked against. */
export interface DpopProofExpectations {
  /** The request's method (`htm`). */
  method: string
  /** The URLs the request may have been sent to (`htu`): behind a proxy, the public one too. */
  urls: readonly (string | URL)[]
  /** At a resource: the access token presented with the proof (`ath`, RFC 9449 §4.3 check 12). */
  accessToken?: string
  /** At a resource: the thumbprint the token is bound to (`cnf.jkt`). */
  boundJkt?: string
  /** Whether a nonce the server gave out is acceptable; leave out when the server uses none. */
  nonce?: (nonce: string | undefined) => boolean
  replay: DpopReplayCache
  now: Date
  /** How old a proof may be (`iat`). Default 300. */
  maxAgeSeconds?: number
  /** How far in the future `iat` may be (clock skew). Default 30. */
  clockToleranceSeconds?: number
  algorithms?: readonly string[]
}

function refused(reason: DpopProofRejection): DpopProofCheck {
  return { ok: false, reason }
}

function headerProblem(proof: string, algorithms: readonly string[]): DpopProofRejection | null {
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    return 'malformed'
  }
  if (header.typ !== DPOP_PROOF_TYP) return 'type'
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) return 'algorithm'
  const jwk = header.jwk as Record<string, unknown> | undefined
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return 'key'
  if (jwk.kty === 'oct' || PRIVATE_MEMBERS.some((member) => member in jwk)) return 'key'
  return null
}

/**
 * Checks one DPoP proof (RFC 9449 §4.3): one header; a JWT with `typ: dpop+jwt`, an asymmetric
 * `alg`, a public `jwk` that verifies the signature; `htm` and `htu` of this request; `iat` within
 * the window; a `jti` not seen before; at a resource, `ath` = the hash of the access token and the
 * key the token is bound to. The `jti` is remembered only once everything else passed.
 */
export async function checkDpopProof(
  header: string | null | undefined,
  expect: DpopProofExpectations,
): Promise<DpopProofCheck> {
  if (header === null || header === undefined || header.trim() === '') return refused('missing')
  const proof = header.trim()
  // Several DPoP headers arrive joined by ", ": no JWT contains a comma.
  if (proof.includes(',')) return refused('multiple')
  const algorithms = expect.algorithms ?? DPOP_ALGORITHMS
  const problem = headerProblem(proof, algorithms)
  if (problem !== null) return refused(problem)
  let payload: JWTPayload
  let jwk: JWK
  try {
    const verified = await jwtVerify(proof, EmbeddedJWK, {
      typ: DPOP_PROOF_TYP,
      algorithms: [...algorithms],
      // iat is checked below against this module's own window, never an `exp` or `nbf`.
      currentDate: expect.now,
    })
    payload = verified.payload
    jwk = verified.protectedHeader.jwk as JWK
  } catch (error) {
    if (error instanceof errors.JWSSignatureVerificationFailed) return refused('signature')
    if (error instanceof errors.JOSEAlgNotAllowed) return refused('algorithm')
    if (error instanceof errors.JWSInvalid) return refused('key')
    return refused('malformed')
  }
  const { jti, htm, htu, iat } = payload as Record<string, unknown>
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 512) return refused('malformed')
  if (typeof htm !== 'string' || typeof htu !== 'string' || typeof iat !== 'number') {
    return refused('malformed')
  }
  if (htm !== expect.method.toUpperCase()) return refused('method')
  const proofUrl = normalizeHtu(htu)
  if (proofUrl === undefined || !expect.urls.some((url) => normalizeHtu(url) === proofUrl)) {
    return refused('url')
  }
  const nowSeconds = expect.now.getTime() / 1000
  const maxAge = expect.maxAgeSeconds ?? 300
  const tolerance = expect.clockToleranceSeconds ?? 30
  if (iat > nowSeconds + tolerance || iat < nowSeconds - maxAge) return refused('iat')
  if (expect.accessToken !== undefined) {
    const ath = (payload as Record<string, unknown>).ath
    if (typeof ath !== 'string' || ath !== (await sha256Base64url(expect.accessToken))) {
      return refused('ath')
    }
  }
  const jkt = await calculateJwkThumbprint(jwk, 'sha256')
  if (expect.boundJkt !== undefined && jkt !== expect.boundJkt) return refused('key_mismatch')
  if (expect.nonce !== undefined) {
    const nonce = (payload as Record<string, unknown>).nonce
    if (!expect.nonce(typeof nonce === 'string' ? nonce : undefined)) return refused('nonce')
  }
  // Per key: one client's jti says nothing about another's.
  const remembered = expect.replay.remember(
    `${jkt}.${jti}`,
    (iat + maxAge + tolerance) * 1000,
    expect.now.getTime(),
  )
  if (!remembered) return refused('replay')
  return { ok: true, jkt, jti }
}

/** The key thumbprint an access token's claims bind it to (RFC 9449 §6.1 `cnf.jkt`), if any. */
export function boundJkt(claims: Readonly<Record<string, unknown>>): string | undefined {
  const cnf = claims.cnf
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) return undefined
  const jkt = (cnf as Record<string, unknown>).jkt
  return typeof jkt === 'string' && jkt.length > 0 ? jkt : undefined
}
