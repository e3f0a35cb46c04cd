import type { AuthorizationDetail } from '../approvals/detail-types.js'
import type { Clock } from '../lib/clock.js'
import { randomToken, sha256 } from '../lib/random.js'
import type { Store } from '../store/db.js'

/**
 * A person has ten minutes from the client's redirect to finish signing in and deciding; after
 * that the client starts again (RFC 6749 §4.1.2 asks the same of codes, for the same reason).
 */
export const AUTHORIZATION_REQUEST_TTL_MS = 10 * 60_000

/** An authorization request that passed every check, waiting for sign-in and consent. */
export interface AuthorizationRequest {
  clientId: string
  /** The redirect URI the response goes to: the one sent, or the client's only registered one. */
  redirectUri: string
  /** Whether the client sent `redirect_uri`; the token request must then repeat it (RFC 6749 §4.1.3). */
  redirectUriSent: boolean
  state: string | null
  /** PKCE S256 code_challenge (RFC 7636 §4.2). */
  codeChallenge: string
  /** RFC 8707 resource indicator the grant is bound to. */
  resource: string
  /** Requested scopes, resource scopes and OIDC scopes together. */
  scopes: string[]
  nonce: string | null
  /** OIDC `prompt` values (`none`, `consent`, …). */
  prompt: string[]
  /** RFC 9396 authorization details, as validated against the resource's types. */
  authorizationDetails?: AuthorizationDetail[]
}

/**
 * Requests in flight between `/authorize`, sign-in and consent. The handle travels in URLs and
 * forms; only its SHA-256 is stored, so a database reader cannot continue someone's request.
 */
export function createAuthorizationRequests(deps: { store: Store; clock: Clock }) {
  const db = deps.store.db

  function parse(params: string): AuthorizationRequest {
    return JSON.parse(params) as AuthorizationRequest
  }

  return {
    /** Stores a validated request and returns its handle (256 random bits). */
    async save(request: AuthorizationRequest): Promise<string> {
      const handle = randomToken(32)
      const now = deps.clock.now().getTime()
      // Abandoned requests would otherwise stay forever; the sweep is cheap at this table's size.
      await db.deleteFrom('authorization_requests').where('expires_at', '<=', now).execute()
      await db
        .insertInto('authorization_requests')
        .values({
          id_hash: sha256(handle),
          client_id: request.clientId,
          params: JSON.stringify(request),
          created_at: now,
          expires_at: now + AUTHORIZATION_REQUEST_TTL_MS,
        })
        .execute()
      return handle
    },

    /** The request a handle names, while it has not expired or been used. */
    async find(handle: string): Promise<AuthorizationRequest | undefined> {
      if (handle.length > 128) return undefined
      const row = await db
        .selectFrom('authorization_requests')
        .select('params')
        .where('id_hash', '=', sha256(handle))
        .where('expires_at', '>', deps.clock.now().getTime())
        .executeTakeFirst()
      return row ? parse(row.params) : undefined
    },

    /**
     * Takes the request out for good. The conditional DELETE lets exactly one of any number of
     * concurrent decisions win, so one request can never yield two codes.
     */
    async consume(handle: string): Promise<AuthorizationRequest | undefined> {
      if (handle.length > 128) return undefined
      const row = await db
        .deleteFrom('authorization_requests')
        .where('id_hash', '=', sha256(handle))
        .where('expires_at', '>', deps.clock.now().getTime())
        .returning('params')
        .executeTakeFirst()
      return row ? parse(row.params) : undefined
    },
  }
}

export type AuthorizationRequests = ReturnType<typeof createAuthorizationRequests>
