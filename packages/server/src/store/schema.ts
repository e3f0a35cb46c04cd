import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

/**
 * The storage schema. Times are epoch milliseconds (BIGINT on PostgreSQL, read back as numbers).
 * JSON columns are TEXT holding JSON so both dialects store them the same way.
 * docs/storage-schema.md says, table by table, what is hashed and what is encrypted.
 */
export interface Database {
  users: UsersTable
  roles: RolesTable
  permissions: PermissionsTable
  role_permissions: RolePermissionsTable
  user_roles: UserRolesTable
  sessions: SessionsTable
  login_throttle: LoginThrottleTable
  signing_keys: SigningKeysTable
  audit_events: AuditEventsTable
  admin_api_keys: AdminApiKeysTable
}

export type UserStatus = 'active' | 'disabled'

export interface UsersTable {
  id: string
  /** Lower-cased; unique. */
  email: string
  name: string
  status: UserStatus
  /** argon2id PHC string; null for a person who cannot sign in with a password. */
  password_hash: string | null
  /** Custom profile claims, a JSON object (e.g. `{"favorite_song": "…"}`). */
  claims: string
  created_at: number
  updated_at: number
}

export interface RolesTable {
  name: string
  description: string
  created_at: number
}

export interface PermissionsTable {
  name: string
  description: string
  created_at: number
}

export interface RolePermissionsTable {
  role: string
  permission: string
}

export interface UserRolesTable {
  user_id: string
  role: string
}

export interface SessionsTable {
  /** SHA-256 of the session id held in the cookie; the id itself is never stored. */
  id_hash: string
  user_id: string
  /** Per-session CSRF secret (random, compared not derived). */
  csrf_token: string
  created_at: number
  expires_at: number
  last_seen_at: number
}

export interface LoginThrottleTable {
  /** `account:<email>` or `address:<ip>`. */
  key: string
  failures: number
  window_started_at: number
  locked_until: number | null
}

export type SigningKeyStatus = 'active' | 'retired'

export interface SigningKeysTable {
  kid: string
  alg: string
  /** Public JWK as JSON. */
  public_jwk: string
  /** Private JWK, sealed with the master key (see keys/envelope.ts). */
  private_jwk_sealed: string
  status: SigningKeyStatus
  created_at: number
  retired_at: number | null
  /** A retired key leaves the JWKS after this time (when the last token it signed has expired). */
  publish_until: number | null
}

export interface AuditEventsTable {
  /** Position in the chain, 1, 2, 3, … with no gaps. */
  seq: ColumnType<number, number, never>
  /** ISO 8601 time of the event. */
  time: string
  /** `noun.past-verb`, e.g. `user.created`. */
  type: string
  /** JSON: `{ "type": "user" | "client" | "agent" | "system", "id": "…" }`. */
  actor: string
  /** JSON: the person an agent acted for, or null. */
  on_behalf_of: string | null
  /** JSON array: the delegation chain, outermost actor first. */
  delegation_chain: string
  /** JSON: what the event is about, or null. */
  target: string | null
  decision: string | null
  reason: string | null
  request_id: string | null
  /** JSON object with event details; never a secret. */
  data: string
  /** Hash of the previous record (64 zeros for the first). */
  prev_hash: string
  /** SHA-256 over the canonical JSON of this record's content including prev_hash. */
  hash: string
}

export interface AdminApiKeysTable {
  id: string
  name: string
  /** SHA-256 of the key; the key is shown once at creation. */
  key_hash: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
}

export type UserRow = Selectable<UsersTable>
export type NewUserRow = Insertable<UsersTable>
export type UserUpdate = Updateable<UsersTable>
export type SigningKeyRow = Selectable<SigningKeysTable>
export type AuditEventRow = Selectable<AuditEventsTable>
export type SessionRow = Selectable<SessionsTable>

// Generated is re-exported for later migrations' tables.
export type { Generated }
