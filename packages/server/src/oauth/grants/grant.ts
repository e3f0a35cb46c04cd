import type { Kysely } from 'kysely'
import type { ApprovalRequests } from '../../approvals/requests.js'
import type { Actor, AuditTarget, AuditWrites } from '../../audit/types.js'
import type { ResolvedConfig } from '../../config/load.js'
import type { User, Users } from '../../identity/users.js'
import type { Form } from '../../lib/form.js'
import type { Providers } from '../../providers/types.js'
import type { Database } from '../../store/schema.js'
import type { Vault } from '../../vault/types.js'
import type { TokenSigningDeps } from '../access-token.js'
import type { AuthorizationCodes } from '../authorization-codes.js'
import type { Client, Clients } from '../clients.js'
import type { DelegationRules } from '../delegation-rules.js'
import type { Grants } from '../grants.js'
import type { MetadataHosts } from '../metadata-hosts.js'
import type { RefreshTokens } from '../refresh-tokens.js'
import type { Resources } from '../resources.js'
import type { JwtBearerDeps } from './assertion.js'

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

/** RFC 8693 §2.2.1: the answer of an exchange (no refresh token, ever, in Deputy's profiles). */
export interface TokenExchangeResponse {
  access_token: string
  issued_token_type: string
  /** RFC 9449 §5: `DPoP` for a delegated token bound to the proof's key; `N_A` for a token that
   * is not an access token (an ID-JAG). */
  token_type: 'Bearer' | 'DPoP' | 'N_A'
  expires_in?: number
  scope?: string
}

/**
 * What the token endpoint records of an exchange as `token.exchanged` (never a token): for whom,
 * through which actors, what was handed out, and the profile's own facts.
 */
export interface Exchanged {
  onBehalfOf: Actor | null
  /** The actors, the current one first (as the audit chain's `delegationChain`). */
  delegationChain: Actor[]
  target: AuditTarget
  data: Record<string, unknown>
}

/** The services grant handlers use: tokens to mint, codes, grants, people and resources. */
export interface GrantDeps extends TokenSigningDeps, JwtBearerDeps {
  config: TokenSigningDeps['config'] & Pick<ResolvedConfig, 'delegationMaxDepth'>
  db: Kysely<Database>
  authorizationCodes: Pick<AuthorizationCodes, 'find' | 'spend' | 'redemption'>
  refreshTokens: Pick<RefreshTokens, 'issue' | 'prepare' | 'rotate'>
  grants: Pick<Grants, 'isActive' | 'revoke' | 'detailsOf' | 'useStatement'>
  users: Pick<Users, 'findById' | 'findByEmail'>
  resources: Pick<Resources, 'get' | 'resolve'>
  metadataHosts: Pick<MetadataHosts, 'forHost'>
  approvals: Pick<ApprovalRequests, 'poll'>
  /** Whether a subject token's client still exists (token exchange). */
  clients: Pick<Clients, 'resolve'>
  /** The provider catalogue and the token vault (token exchange's vault profile). */
  providers: Pick<Providers, 'get'>
  vault: Pick<Vault, 'accessToken'>
  /** Who may act for whom (token exchange's delegation profile). */
  delegationRules: Pick<DelegationRules, 'forClient'>
}

/** What a grant handler is given: an authenticated client and the parsed request. */
export interface GrantContext {
  deps: GrantDeps
  client: Client
  form: Form
  /** RFC 9449 §5: the thumbprint of the key of the request's DPoP proof, when it had one. */
  dpopJkt?: string | undefined
}

/**
 * A grant handler's answer: the response body, and what was issued (a Deputy token) or handed
 * out (an exchange's upstream token), for the audit record.
 */
export type GrantResult = IssuedResult | ExchangedResult | IdJagResult

/** An Identity Assertion JWT Deputy issued as an enterprise IdP (grants/id-jag-exchange.ts). */
export interface IdJagResult {
  body: TokenExchangeResponse
  idJag: {
    userId: string
    /** The issuer of the authorization server it is for, and its name in the trust store. */
    audience: string
    trustedIssuer: string
    /** The client_id it names: the caller's at that authorization server. */
    remoteClientId: string
    resources: string[]
    scopes: string[]
    jti: string
    /** Epoch ms. */
    expiresAt: number
  }
  issued?: undefined
  exchanged?: undefined
}

/** An exchange that handed out a connected account's token (RFC 8693 §2.2.1). */
export interface ExchangedResult {
  body: TokenExchangeResponse
  exchanged: Exchanged
  issued?: undefined
  idJag?: undefined
}

/** Deputy issued tokens of its own. */
export interface IssuedResult {
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
    /** The jwt-bearer assertion the token was issued on (never the assertion itself). */
    assertion?: { trustedIssuer: string; issuer: string; subject: string; jti: string }
    /**
     * Rows that make the issuance real, committed with its audit record in one transaction
     * (`AuditLog.appendWith`); the grant's last use is among them. When their condition changed
     * no row (another redemption won), nothing was written and `lost` throws the refusal.
     */
    commit?: { writes: AuditWrites; lost(): Promise<never> }
  }
  exchanged?: undefined
  idJag?: undefined
}

export type GrantHandler = (ctx: GrantContext) => Promise<GrantResult>
