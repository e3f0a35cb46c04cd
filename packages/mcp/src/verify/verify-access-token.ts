import { boundJkt, checkDpopProof, type DpopReplayCache } from '../dpop.js'
import { type AccessTokenVerifier, type Clock, rejected, type TokenCheck } from './types.js'

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/** The request a DPoP-scheme token came with: what its proof must match (RFC 9449 §7.1). */
export interface DpopRequest {
  readonly method: string
  /** The URLs the request may have been sent to: the one received, and the public one. */
  readonly urls: readonly (string | URL)[]
  /** The `DPoP` header, joined when sent more than once. */
  readonly proof: string | null
  readonly replay: DpopReplayCache
  readonly clock?: Clock
}

/**
 * Checks the `Authorization` header of a request: exactly one `Bearer` or `DPoP` credential,
 * verified by `verifier`. Tokens are read from the header only; MCP authorization ("Token
 * Requirements") forbids them in the query string, so a query `access_token` is never looked at.
 *
 * A token bound to a key (`cnf.jkt`) is refused as Bearer (RFC 9449 §7.2: no downgrade); with the
 * DPoP scheme it needs a proof for this request made with that key (§7.1), which only callers that
 * pass `dpop` can check: without it the DPoP scheme is answered as if no credentials were sent.
 */
export async function verifyAccessToken(
  authorization: string | null | undefined,
  verifier: AccessTokenVerifier,
  dpop?: DpopRequest,
): Promise<TokenCheck> {
  if (authorization === null || authorization === undefined || authorization.trim() === '') {
    return rejected('missing')
  }
  const match = /^([A-Za-z]+) +(.*)$/.exec(authorization.trim())
  if (match === null) return rejected('malformed_header')
  const [, scheme, token] = match as unknown as [string, string, string]
  const isDpop = scheme.toLowerCase() === 'dpop' && dpop !== undefined
  // Another scheme (Basic, …) is no credential this resource takes: answer as if none were sent,
  // so the client learns from the challenge which schemes this resource wants (RFC 9110 §11.6.1).
  if (scheme.toLowerCase() !== 'bearer' && !isDpop) return rejected('missing')
  // Several Authorization headers arrive joined by ", " and fail this pattern: refused, never guessed.
  if (!B64TOKEN.test(token)) return rejected('malformed_header')
  const check = await verifier(token)
  if (!isDpop) {
    if (check.ok && boundJkt(check.identity.claims) !== undefined) return rejected('dpop_bound')
    return check
  }
  if (!check.ok) return { ...check, scheme: 'DPoP' }
  const jkt = boundJkt(check.identity.claims)
  if (jkt === undefined) return { ok: false, reason: 'dpop_unbound', scheme: 'DPoP' }
  const proof = await checkDpopProof(dpop.proof, {
    method: dpop.method,
    urls: dpop.urls,
    accessToken: token,
    boundJkt: jkt,
    replay: dpop.replay,
    now: (dpop.clock ?? (() => new Date()))(),
  })
  if (!proof.ok) return { ok: false, reason: 'dpop_proof', detail: proof.reason, scheme: 'DPoP' }
  return check
}

/**
 * {@link verifyAccessToken} for a whole request: its Authorization and DPoP headers, its method,
 * and as `htu` its own URL or the same path under `publicOrigin` (the resource's, when a proxy
 * in front rewrote the host).
 */
export function verifyRequestToken(
  request: Request,
  verifier: AccessTokenVerifier,
  options: { replay: DpopReplayCache; publicOrigin?: URL; clock?: Clock },
): Promise<TokenCheck> {
  // The URLs are parsed only when a DPoP proof is checked against them: a Bearer call (most of
  // them) never reads them, and parsing the request URL twice per call showed in the gateway's
  // profile.
  let urls: (string | URL)[] | undefined
  const dpopRequest: DpopRequest = {
    method: request.method,
    get urls() {
      if (urls === undefined) {
        const received = new URL(request.url)
        urls = [received]
        if (options.publicOrigin !== undefined && options.publicOrigin.origin !== received.origin) {
          urls.push(new URL(received.pathname, options.publicOrigin))
        }
      }
      return urls
    },
    proof: request.headers.get('dpop'),
    replay: options.replay,
    ...(options.clock !== undefined && { clock: options.clock }),
  }
  return verifyAccessToken(request.headers.get('authorization'), verifier, dpopRequest)
}
