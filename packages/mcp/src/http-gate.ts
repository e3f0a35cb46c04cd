import type { AuthInfo } from '@modelcontextprotocol/server'
import { type BrowserPageFacts, browserPageOr } from './browser-page.js'
import { tokenRefusalResponse } from './challenge.js'
import { dpopReplayCache } from './dpop.js'
import type { Identity } from './identity.js'
import { type JsonRpcRequest, jsonRpcRequests } from './json-rpc.js'
import { withoutCredentials } from './request-parts.js'
import type { AccessTokenVerifier } from './verify/types.js'
import { verifyRequestToken } from './verify/verify-access-token.js'

/** What the gate learnt about one HTTP request, for the per-request server and the tool wrappers. */
export interface RequestFacts {
  readonly identity: Identity
  readonly requests: readonly JsonRpcRequest[]
  /**
   * The verified access token itself: kept here, in the kit, only as the subject of a token
   * exchange with the authorization server that issued it (`ctx.connections`); never handed to
   * the SDK or to tools.
   */
  readonly token: string
}

/**
 * The facts of the requests the gate let through, keyed by the AuthInfo object it handed the
 * SDK (which passes it through untouched). Only the gate creates AuthInfo objects this knows, so
 * anything else reaching a tool is refused.
 */
export interface VerifiedCallers {
  get(authInfo: AuthInfo | undefined): RequestFacts | undefined
  set(authInfo: AuthInfo, facts: RequestFacts): void
}

/** A fresh {@link VerifiedCallers}; entries go with their request. */
export function verifiedCallers(): VerifiedCallers {
  const facts = new WeakMap<AuthInfo, RequestFacts>()
  return {
    get: (authInfo) => (authInfo === undefined ? undefined : facts.get(authInfo)),
    set: (authInfo, known) => {
      facts.set(authInfo, known)
    },
  }
}

/** The token of an `Authorization: Bearer` header the verifier accepted. */
function bearerToken(header: string | null): string {
  return (header ?? '').replace(/^Bearer\s+/i, '').trim()
}

/** What the HTTP gate needs. */
export interface HttpGateDeps {
  readonly verifier: AccessTokenVerifier
  /** This MCP server's resource indicator, as a URL. */
  readonly resource: URL
  /** Where the Protected Resource Metadata is served (RFC 9728 §5.1). */
  readonly resourceMetadataUrl: string
  /** Scopes named in the 401 challenge. */
  readonly challengeScopes: () => string[]
  readonly callers: VerifiedCallers
  /** The SDK's handler, given the verified caller and the already parsed body. */
  readonly handle: (
    request: Request,
    options: { authInfo: AuthInfo; parsedBody?: unknown },
  ) => Promise<Response>
  readonly onError: (error: Error) => void
  /** What the page a person's browser gets at the MCP URL says about the server. */
  readonly browserPage: () => BrowserPageFacts
}

/**
 * The MCP endpoint's gate: no request reaches the SDK without a token verified for this
 * resource (otherwise the RFC 6750 challenge pointing at the metadata), and none reaches it with
 * the token still on it.
 */
export function httpGate(
  deps: HttpGateDeps,
): (request: Request, parsedBody: unknown) => Promise<Response> {
  // The DPoP proofs (`jti`) this endpoint has accepted, for the replay check (RFC 9449 §11.1).
  const replay = dpopReplayCache()
  return async (request, parsedBody) => {
    const check = await verifyRequestToken(request, deps.verifier, {
      replay,
      publicOrigin: deps.resource,
    })
    if (!check.ok) {
      const refusal = tokenRefusalResponse(check, {
        resourceMetadata: deps.resourceMetadataUrl,
        scope: deps.challengeScopes(),
        onError: deps.onError,
      })
      // A person's browser opening the URL gets the same 401 with a page saying what this is.
      return browserPageOr(request, check, refusal, deps.browserPage)
    }
    const { identity } = check
    const authInfo: AuthInfo = {
      token: '',
      clientId: identity.clientId ?? '',
      scopes: [...identity.scopes],
      ...(identity.expiresAt !== undefined && { expiresAt: identity.expiresAt }),
      resource: deps.resource,
      resourceMetadataUrl: deps.resourceMetadataUrl,
      extra: { sub: identity.sub },
    }
    deps.callers.set(authInfo, {
      identity,
      requests: jsonRpcRequests(parsedBody),
      token: bearerToken(request.headers.get('authorization')),
    })
    return deps.handle(withoutCredentials(request, parsedBody !== undefined), {
      authInfo,
      ...(parsedBody !== undefined && { parsedBody }),
    })
  }
}
