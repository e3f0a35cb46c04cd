import type { Kysely } from 'kysely'
import type { ApprovalRequests } from '../../approvals/requests.js'
import type { User, Users } from '../../identity/users.js'
import type { Form } from '../../lib/form.js'
import type { Database } from '../../store/schema.js'
import type { TokenSigningDeps } from '../access-token.js'
import type { AuthorizationCodes } from '../authorization-codes.js'
import type { Client } from '../clients.js'
import type { Grants } from '../grants.js'
import type { MetadataHosts } from '../metadata-hosts.js'
import type { RefreshTokens } from '../refresh-tokens.js'
import type { Resources } from '../resources.js'

// The contract of a grant handler (one file per grant type beside this one); the token endpoint
// (oauth/token.ts) authenticates the client, picks the handler from its registry and audits.

/** RFC 6749 §5.1: the successful token response. */
export interface TokenResponse {
  access_token: string
  /** RFC 9449 §5: `DPoP` when the access token is bound to the proof's key. */
  token_type: 'Bearer' | 'DPoP'
  expires_in: number
  scope: string
  refresh_token?: string
  id_token?: string
  /** RFC 9396 §7: what was authorized, when the grant had details. */
  authorization_details?: readonly Record<string, unknown>[]
}

/** The services grant handlers use: tokens to mint, codes, grants, people and resources. */
export interface GrantDeps extends TokenSigningDeps {
  db: Kysely<Database>
  authorizationCodes: Pick<AuthorizationCodes, 'consume' | 'markRedeemed'>
  refreshTokens: Pick<RefreshTokens, 'issue' | 'rotate'>
  grants: Pick<Grants, 'isActive' | 'revoke' | 'detailsOf'>
  users: Pick<Users, 'findById'>
  resources: Pick<Resources, 'get' | 'resolve'>
  metadataHosts: Pick<MetadataHosts, 'forHost'>
  approvals: Pick<ApprovalRequests, 'poll'>
}

/** What a grant handler is given: an authenticated client and the parsed request. */
export interface GrantContext {
  deps: GrantDeps
  client: Client
  form: Form
  /** RFC 9449 §5: the thumbprint of the key of the request's DPoP proof, when it had one. */
  dpopJkt?: string | undefined
}

/** A grant handler's answer: the response body, and what was issued for the audit record. */
export interface GrantResult {
  body: TokenResponse
  issued: {
    user: User | null
    resource: string
    scopes: string[]
    jti: string
    grantId: string | null
    refreshToken: boolean
    /** A refresh retried within the grace period. */
    retried?: boolean
    /** The approval (CIBA) the token was issued for. */
    approvalId?: string
  }
}

export type GrantHandler = (ctx: GrantContext) => Promise<GrantResult>
