import { DPOP_ALGORITHMS } from './dpop.js'
import type { TokenCheck } from './verify/types.js'

/** Parameters of a `WWW-Authenticate: Bearer` challenge. */
export interface BearerChallengeParams {
  /** RFC 6750 §3.1 error code; leave out when the request carried no credentials. */
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope'
  errorDescription?: string
  /** Scopes the client should ask for (RFC 6750 §3, MCP "Scope Selection Strategy"). */
  scope?: readonly string[]
  /** RFC 9728 §5.1: where the Protected Resource Metadata lives. */
  resourceMetadata?: string
  realm?: string
}

// RFC 9110 §5.6.4 quoted-string: backslash-escape `"` and `\`; RFC 6750 §3 also limits the values to
// printable ASCII, so anything else becomes a space rather than a malformed header.
function quoted(value: string): string {
  const printable = value.replaceAll(/[^\u0020-\u007E]/g, ' ')
  return `"${printable.replaceAll(/["\\]/g, (char) => `\\${char}`)}"`
}

/**
 * Builds the value of a `WWW-Authenticate: Bearer` header. Without `error` it is the bare
 * challenge RFC 6750 §3.1 asks for when no credentials were sent.
 */
export function bearerChallenge(params: BearerChallengeParams): string {
  const parts: string[] = []
  if (params.realm !== undefined) parts.push(`realm=${quoted(params.realm)}`)
  if (params.error !== undefined) parts.push(`error=${quoted(params.error)}`)
  if (params.errorDescription !== undefined) {
    parts.push(`error_description=${quoted(params.errorDescription)}`)
  }
  if (params.resourceMetadata !== undefined) {
    parts.push(`resource_metadata=${quoted(params.resourceMetadata)}`)
  }
  if (params.scope !== undefined && params.scope.length > 0) {
    parts.push(`scope=${quoted(params.scope.join(' '))}`)
  }
  return parts.length === 0 ? 'Bearer' : `Bearer ${parts.join(', ')}`
}

/** Parameters of a `WWW-Authenticate: DPoP` challenge (RFC 9449 §7.1). */
export interface DpopChallengeParams {
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof'
  errorDescription?: string
  /** The proof algorithms accepted (`algs`). Default: every asymmetric one the kit checks. */
  algorithms?: readonly string[]
  resourceMetadata?: string
  scope?: readonly string[]
}

/** Builds the value of a `WWW-Authenticate: DPoP` challenge, `algs` always included. */
export function dpopChallenge(params: DpopChallengeParams): string {
  const parts: string[] = []
  if (params.error !== undefined) parts.push(`error=${quoted(params.error)}`)
  if (params.errorDescription !== undefined) {
    parts.push(`error_description=${quoted(params.errorDescription)}`)
  }
  parts.push(`algs=${quoted((params.algorithms ?? DPOP_ALGORITHMS).join(' '))}`)
  if (params.resourceMetadata !== undefined) {
    parts.push(`resource_metadata=${quoted(params.resourceMetadata)}`)
  }
  if (params.scope !== undefined && params.scope.length > 0) {
    parts.push(`scope=${quoted(params.scope.join(' '))}`)
  }
  return `DPoP ${parts.join(', ')}`
}

/**
 * Both challenges (RFC 9110 §11.6.1 allows several): the Bearer one first, which clients without
 * DPoP read, then DPoP with its `algs`. A token that came with the DPoP scheme is answered with
 * the DPoP challenge carrying the error (RFC 9449 §7.1).
 */
function challenges(scheme: 'DPoP' | undefined, params: DpopChallengeParams): string {
  const { error, errorDescription, ...where } = params
  if (scheme === 'DPoP' || error === 'invalid_dpop_proof') return dpopChallenge(params)
  const bearer = bearerChallenge({
    ...where,
    ...(error !== undefined && { error }),
    ...(errorDescription !== undefined && { errorDescription }),
  })
  return `${bearer}, ${dpopChallenge({})}`
}

/** What each DPoP refusal tells the client: enough to act on, nothing about the checks' details. */
const DPOP_DESCRIPTIONS: Partial<Record<string, string>> = {
  dpop_bound: 'The access token is bound to a key: send it with the DPoP scheme and a proof',
  dpop_unbound: 'The access token is not bound to a key: send it with the Bearer scheme',
}

function json(status: number, body: unknown, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  })
}

/**
 * The answer to a request whose access token failed the check: a bare 401 challenge without
 * credentials (RFC 6750 §3.1), 400 for a malformed Authorization header, 503 when the issuer
 * cannot be reached, otherwise 401 `invalid_token` with a description that says only whether to
 * refresh or re-authorize. Used by the kit and by the gateway, so both answer alike.
 */
export function tokenRefusalResponse(
  check: Extract<TokenCheck, { ok: false }>,
  options: { resourceMetadata: string; scope: readonly string[]; onError: (error: Error) => void },
): Response {
  switch (check.reason) {
    case 'missing':
      // RFC 6750 §3.1: no error code when the request carried no credentials.
      return new Response(null, {
        status: 401,
        headers: {
          'www-authenticate': challenges(undefined, {
            resourceMetadata: options.resourceMetadata,
            scope: options.scope,
          }),
          'cache-control': 'no-store',
        },
      })
    case 'malformed_header': {
      const description = 'The Authorization header must carry exactly one Bearer token'
      return json(
        400,
        { error: 'invalid_request', error_description: description },
        {
          'www-authenticate': challenges(check.scheme, {
            error: 'invalid_request',
            errorDescription: description,
            resourceMetadata: options.resourceMetadata,
            scope: options.scope,
          }),
        },
      )
    }
    case 'unavailable':
      options.onError(
        new Error(`access token could not be checked: ${check.detail ?? 'issuer unavailable'}`),
      )
      return json(503, { error: 'temporarily_unavailable' }, { 'retry-after': '5' })
    case 'dpop_proof': {
      // RFC 9449 §7.1: a proof that fails is `invalid_dpop_proof`; which check stays here.
      const description = 'The DPoP proof is not valid for this request'
      return json(
        401,
        { error: 'invalid_dpop_proof', error_description: description },
        {
          'www-authenticate': challenges('DPoP', {
            error: 'invalid_dpop_proof',
            errorDescription: description,
            resourceMetadata: options.resourceMetadata,
            scope: options.scope,
          }),
        },
      )
    }
    default: {
      // One description per class of failure: enough for a client to act on (refresh or
      // re-authorize), nothing about keys, issuers or audiences.
      const description =
        DPOP_DESCRIPTIONS[check.reason] ??
        (check.reason === 'expired'
          ? 'The access token expired'
          : 'The access token is not valid for this resource')
      return json(
        401,
        { error: 'invalid_token', error_description: description },
        {
          'www-authenticate': challenges(check.scheme, {
            error: 'invalid_token',
            errorDescription: description,
            resourceMetadata: options.resourceMetadata,
            scope: options.scope,
          }),
        },
      )
    }
  }
}
