import type { Logger } from 'pino'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import type { Provider, Providers } from '../providers/types.js'
import type { Store } from '../store/db.js'
import { createConnectionStore, toConnection } from './connections.js'
import { createRefresher } from './refresh.js'
import {
  type Connection,
  type ConnectionInput,
  type Vault,
  type VaultAccessToken,
  VaultError,
} from './types.js'

/** What the vault uses: the database, the sealer for tokens, the provider protocol, the audit. */
export interface VaultDeps {
  store: Store
  clock: Clock
  sealer: Sealer
  audit: AuditLog
  logger?: Pick<Logger, 'warn'>
  providers: Pick<Providers, 'get' | 'refresh' | 'revoke'>
  config: { vaultRefreshAheadSeconds: number }
}

/**
 * The token vault (vault/types.ts): connected accounts with sealed tokens (connections.ts) and
 * the refresh discipline (refresh.ts). Tokens never appear in audit events or logs.
 */
export function createVault(deps: VaultDeps): Vault {
  const connections = createConnectionStore(deps)
  const refresher = createRefresher({
    ...deps,
    connections,
    refreshAheadSeconds: deps.config.vaultRefreshAheadSeconds,
  })

  async function usableProvider(name: string, scopes: string[]): Promise<Provider> {
    const provider = await deps.providers.get(name)
    if (!provider?.uses.includes('connect'))
      throw new VaultError('provider_unavailable', name, `no provider ${name} to connect to`)
    if (provider.status !== 'active')
      throw new VaultError('provider_unavailable', name, `the provider ${name} is disabled`, scopes)
    return provider
  }

  return {
    async list(userId: string): Promise<Connection[]> {
      return (await connections.list(userId)).map(toConnection)
    },

    async listByProvider(provider: string, limit: number): Promise<Connection[]> {
      return (await connections.listByProvider(provider, limit)).map(toConnection)
    },

    async get(userId: string, provider: string): Promise<Connection | null> {
      const row = await connections.find(userId, provider)
      return row ? toConnection(row) : null
    },

    async accessToken(userId, providerName, options = {}): Promise<VaultAccessToken> {
      const asked = options.scopes ?? []
      const row = await connections.find(userId, providerName)
      if (!row) {
        const provider = await deps.providers.get(providerName)
        throw new VaultError(
          'connection_required',
          providerName,
          `no ${providerName} account is connected`,
          asked.length > 0 ? asked : (provider?.scopes ?? []),
        )
      }
      const granted = JSON.parse(row.scopes) as string[]
      if (row.status === 'needs_reconnect') {
        throw new VaultError(
          'connection_required',
          providerName,
          `the ${providerName} connection must be connected again`,
          [...new Set([...granted, ...asked])],
        )
      }
      const missing = asked.filter((s) => !granted.includes(s))
      if (missing.length > 0) {
        throw new VaultError(
          'connection_required',
          providerName,
          `the ${providerName} connection lacks the scopes ${missing.join(' ')}`,
          missing,
        )
      }
      const provider = await usableProvider(providerName, asked)
      const token = await refresher.accessToken(provider, row)
      await connections.touch(row)
      return token
    },

    async connect(input: ConnectionInput, actor: Actor): Promise<Connection> {
      const { row, created } = await connections.upsert(input)
      const connection = toConnection(row)
      await deps.audit.append({
        type: 'connection.created',
        actor,
        onBehalfOf: { type: 'user', id: input.userId },
        target: { type: 'connection', id: row.id },
        data: {
          provider: input.provider,
          scopes: connection.scopes,
          accountLabel: input.accountLabel,
          reconnected: !created,
          refreshToken: row.refresh_token_sealed !== null,
        },
      })
      return connection
    },

    async disconnect(userId: string, providerName: string, actor: Actor): Promise<boolean> {
      const row = await connections.find(userId, providerName)
      if (!row) return false
      let revokedUpstream = false
      let revocationError: string | null = null
      const provider = await deps.providers.get(providerName)
      if (provider) {
        try {
          revokedUpstream = await deps.providers.revoke(provider, connections.open(row))
        } catch (err) {
          // The person asked for the connection to go: it goes, and the audit says upstream
          // did not confirm, so they know to revoke it there.
          revocationError = (err as { code?: string }).code ?? 'failed'
          deps.logger?.warn(
            { provider: providerName, code: revocationError },
            'upstream revocation failed',
          )
        }
      }
      await deps.audit.append({
        type: 'connection.removed',
        actor,
        onBehalfOf: { type: 'user', id: userId },
        target: { type: 'connection', id: row.id },
        data: { provider: providerName, revokedUpstream, revocationError },
      })
      return connections.delete(row.id)
    },
  }
}
