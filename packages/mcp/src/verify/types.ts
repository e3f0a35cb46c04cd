import type { Identity } from '../identity.js'

/**
 * Why an access token was refused. Stable codes to branch on and to put in logs; callers on the
 * wire only ever see `invalid_token` (or `invalid_request` for a malformed header).
 */
export type TokenRejection =
  /** No credentials at all: answered with a bare challenge (RFC 6750 §3.1). */
  | 'missing'
  /** An Authorization header that is not one well-formed `Bearer` credential. */
  | 'malformed_header'
  /** Not a parseable token (bad JWT structure, bad JSON). */
  | 'malformed'
  /** Signature does not verify. */
  | 'signature'
  /** Signed with a key the issuer does not publish (after a rate-limited refetch). */
  | 'unknown_key'
  /** Signed with an algorithm this resource does not accept. */
  | 'algorithm'
  /** Wrong `typ` header (RFC 9068 §4 wants `at+jwt`). */
  | 'type'
  /** Wrong or missing `iss`. */
  | 'issuer'
  /** `aud` is not exactly this resource (RFC 8707 §2, MCP authorization "Token Handling"). */
  | 'audience'
  /** Past `exp`, beyond the clock tolerance. */
  | 'expired'
  /** Before `nbf` or `iat` from the future, beyond the clock tolerance. */
  | 'not_yet_valid'
  /** A required claim (`sub`, `exp`) is missing or has the wrong type. */
  | 'claims'
  /** Introspection says `active: false`, or the token is not an access token. */
  | 'inactive'
  /** The issuer's JWKS or introspection endpoint could not be reached: not the caller's fault. */
  | 'unavailable'
  /** A DPoP-bound token (`cnf.jkt`) presented as a Bearer token (RFC 9449 §7.2). */
  | 'dpop_bound'
  /** The DPoP scheme with a token not bound to any key: nothing to prove possession of. */
  | 'dpop_unbound'
  /** The DPoP proof failed a check of RFC 9449 §4.3 (`detail` says which). */
  | 'dpop_proof'

/** The outcome of checking one access token. */
export type TokenCheck =
  | { readonly ok: true; readonly identity: Identity }
  | {
      readonly ok: false
      readonly reason: TokenRejection
      readonly detail?: string
      /** The scheme the token came with, so the challenge answers in kind (RFC 9449 §7.1). */
      readonly scheme?: 'DPoP'
    }

/**
 * Checks one bearer token for this resource. Implementations: {@link jwtVerifier} and
 * {@link introspectionVerifier}; any other function with this shape works too.
 */
export type AccessTokenVerifier = (token: string) => Promise<TokenCheck>

/** The fetch the verifiers use; pass one in tests or to add proxies and timeouts. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** A clock returning the current time; tests pass a fake one. */
export type Clock = () => Date

/** Refuses with a reason; a small helper that keeps the result objects uniform. */
export function rejected(reason: TokenRejection, detail?: string): TokenCheck {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail }
}
