import type { Actor } from '../audit/types.js'
import type { UpstreamTokens } from '../providers/types.js'

/** A person's connected account as shown to them and to operators (never a token). */
export interface Connection {
  id: string
  userId: string
  provider: string
  status: 'active' | 'needs_reconnect'
  accountLabel: string | null
  scopes: string[]
  accessTokenExpiresAt: string | null
  lastUsedAt: string | null
  createdAt: string
  updatedAt: string
}

/** What a finished connect flow brings back from the provider, to be stored sealed. */
export interface ConnectionInput {
  userId: string
  provider: string
  tokens: UpstreamTokens
  /** The scopes asked for, used when the provider does not say what it granted. */
  requestedScopes: string[]
  accountSubject: string | null
  accountLabel: string | null
}

/** A short-lived upstream access token handed out by the vault (never the refresh token). */
export interface VaultAccessToken {
  accessToken: string
  /** Epoch ms; null when the provider did not say. */
  expiresAt: number | null
  scopes: string[]
}

/**
 * The token vault: connected accounts, sealed tokens, refresh that never races.
 * `accessToken` refreshes ahead of expiry (setting `vaultRefreshAheadSeconds`), one refresh per
 * connection at a time across processes (in-process single flight plus a row lock and a re-read
 * after it); `invalid_grant` marks the connection `needs_reconnect`; transient failures back off.
 */
export interface Vault {
  list(userId: string): Promise<Connection[]>
  /** Every person's connection at one provider, the most recently used first, at most `limit`. */
  listByProvider(provider: string, limit: number): Promise<Connection[]>
  get(userId: string, provider: string): Promise<Connection | null>
  /**
   * A usable access token for the person's connection, with at least `scopes` when given.
   * Throws VaultError 'connection_required' (no connection, needs_reconnect, too few scopes)
   * carrying what a connect link needs.
   */
  accessToken(
    userId: string,
    provider: string,
    options?: { scopes?: string[] },
  ): Promise<VaultAccessToken>
  /**
   * Stores a connection from a finished connect flow (a reconnect replaces the tokens and
   * clears needs_reconnect) and audits `connection.created`.
   */
  connect(input: ConnectionInput, actor: Actor): Promise<Connection>
  /** Disconnects: revokes upstream where the provider can, then deletes the row. */
  disconnect(userId: string, provider: string, actor: Actor): Promise<boolean>
}

export class VaultError extends Error {
  readonly code: 'connection_required' | 'provider_unavailable'
  readonly provider: string
  readonly scopes: string[]
  constructor(code: VaultError['code'], provider: string, message: string, scopes: string[] = []) {
    super(message)
    this.name = 'VaultError'
    this.code = code
    this.provider = provider
    this.scopes = scopes
  }
}
