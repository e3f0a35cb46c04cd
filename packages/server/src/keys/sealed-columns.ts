import type { Database } from '../store/schema.js'

/**
 * One sealed column: where sealed values live and the associated data each was sealed with.
 * `deputy keys rotate-master` re-seals exactly what this registry lists, so a module that adds a
 * `*_sealed` column adds its row here (test/keys/sealed-columns.test.ts fails until it does).
 */
export interface SealedColumn {
  table: keyof Database & string
  /** The primary key: how one row is found again for the compare-and-swap update. */
  keys: readonly string[]
  /** The column that holds the sealed value (or the JSON object that holds it, see jsonField). */
  column: string
  /** When the sealed value is one field of a JSON object stored in `column`. */
  jsonField?: string
  /** Other columns the associated data is built from. */
  reads?: readonly string[]
  /** Only rows where these columns hold these values carry a sealed value. */
  only?: Readonly<Record<string, string>>
  /** The associated data the value was sealed with, from the row (keys and reads). */
  associatedData(row: Readonly<Record<string, unknown>>): string
}

/** Associated data of a provider's client secret (providers.client_secret_sealed). */
export function providerSecretContext(name: string): string {
  return `providers:${name}:client_secret`
}

/** Associated data of a provider flow's PKCE verifier and nonce (provider_flows.secrets_sealed). */
export function providerFlowContext(stateHash: string): string {
  return `provider_flows:${stateHash}`
}

/** Associated data of a connected account's token: bound to connection, person and provider. */
export function connectionTokenContext(
  connection: { id: string; userId: string; provider: string },
  field: 'access_token' | 'refresh_token',
): string {
  return `connections:${connection.id}:${connection.userId}:${connection.provider}:${field}`
}

// The associated data below must be exactly what the producing module seals with; the rotation
// tests re-seal records the modules wrote and then read them back through the modules.
/** Every sealed value Deputy stores. */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  // keys/signing-keys.ts
  {
    table: 'signing_keys',
    keys: ['kid'],
    column: 'private_jwk_sealed',
    associatedData: (row) => `signing_keys:${row.kid}`,
  },
  // approvals/requests.ts (CIBA ping mode)
  {
    table: 'approval_requests',
    keys: ['id'],
    column: 'notification_token_sealed',
    associatedData: (row) => `approval_requests:${row.id}:client_notification_token`,
  },
  {
    table: 'approval_requests',
    keys: ['id'],
    column: 'auth_req_id_sealed',
    associatedData: (row) => `approval_requests:${row.id}:auth_req_id`,
  },
  // approvals/preferences.ts, approvals/channels/webhook.ts: `{ "url", "secret_sealed" }`
  {
    table: 'notification_preferences',
    keys: ['user_id', 'channel'],
    column: 'settings',
    jsonField: 'secret_sealed',
    only: { channel: 'webhook' },
    associatedData: (row) => `notification_preferences:${row.user_id}:webhook`,
  },
  // Issue 12 (migration 0012; store/schema.ts names the associated data)
  {
    table: 'providers',
    keys: ['name'],
    column: 'client_secret_sealed',
    associatedData: (row) => providerSecretContext(String(row.name)),
  },
  {
    table: 'provider_flows',
    keys: ['state_hash'],
    column: 'secrets_sealed',
    associatedData: (row) => providerFlowContext(String(row.state_hash)),
  },
  {
    table: 'connections',
    keys: ['id'],
    column: 'access_token_sealed',
    reads: ['user_id', 'provider'],
    associatedData: (row) => connectionTokenContext(connectionOf(row), 'access_token'),
  },
  {
    table: 'connections',
    keys: ['id'],
    column: 'refresh_token_sealed',
    reads: ['user_id', 'provider'],
    associatedData: (row) => connectionTokenContext(connectionOf(row), 'refresh_token'),
  },
]

function connectionOf(row: Readonly<Record<string, unknown>>) {
  return { id: String(row.id), userId: String(row.user_id), provider: String(row.provider) }
}
