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
  resources: ResourcesTable
  resource_scopes: ResourceScopesTable
  clients: ClientsTable
  client_metadata_hosts: ClientMetadataHostsTable
  delegation_rules: DelegationRulesTable
  approval_requests: ApprovalRequestsTable
  authorization_detail_types: AuthorizationDetailTypesTable
  approval_notifications: ApprovalNotificationsTable
  notification_preferences: NotificationPreferencesTable
  consents: ConsentsTable
  grants: GrantsTable
  authorization_requests: AuthorizationRequestsTable
  authorization_codes: AuthorizationCodesTable
  refresh_tokens: RefreshTokensTable
  revoked_access_tokens: RevokedAccessTokensTable
  client_assertion_jtis: ClientAssertionJtisTable
  trusted_issuers: TrustedIssuersTable
  mcp_user_state: McpUserStateTable
  mcp_shop_orders: McpShopOrdersTable
  policy_set: PolicySetTable
  policy_versions: PolicyVersionsTable
  policy_actions: PolicyActionsTable
  relationship_tuples: RelationshipTuplesTable
  audit_checkpoints: AuditCheckpointsTable
  providers: ProvidersTable
  provider_identities: ProviderIdentitiesTable
  provider_flows: ProviderFlowsTable
  connections: ConnectionsTable
  cache_versions: CacheVersionsTable
  passkeys: PasskeysTable
  passkey_challenges: PasskeyChallengesTable
  rate_limit_buckets: RateLimitBucketsTable
}

/** A shared rate-limit bucket (PostgreSQL; migration 0023). Times are the database's epoch ms. */
export interface RateLimitBucketsTable {
  /** `<limit>:<key>`, e.g. `token-client:agent-1`. */
  key: string
  tokens: number
  granted: number
  updated_at: number
  expires_at: number
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
  /** `password`, or `provider:<name>` (migration 0020). */
  signed_in_with: ColumnType<string, string | undefined, string>
  /** The browser it was signed in from, summarised ("Firefox on Linux", migration 0026). */
  device: Generated<string | null>
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

export interface ResourcesTable {
  /** The resource indicator (RFC 8707): absolute URI, no fragment. */
  uri: string
  name: string
  /** JSON array of the person's claims copied into access tokens for this resource. */
  claims_template: string
  /** 1 for the resource used when a client sends no `resource`. */
  is_default: number
  created_at: number
  updated_at: number
}

export interface ResourceScopesTable {
  resource_uri: string
  scope: string
  /** The sentence shown on the consent page. */
  description: string
}

export type ClientKind = 'registered' | 'dynamic' | 'metadata_document'
export type ClientAuthMethod =
  | 'none'
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'private_key_jwt'

export interface ClientsTable {
  client_id: string
  kind: ClientKind
  name: string
  status: 'active' | 'disabled'
  /** JSON array of exact redirect URIs. */
  redirect_uris: string
  /** JSON array of grant types. */
  grant_types: string
  token_endpoint_auth_method: ClientAuthMethod
  /** SHA-256 of the client secret. */
  secret_hash: string | null
  /** JSON JWK Set for private_key_jwt. */
  jwks: string | null
  jwks_uri: string | null
  /** Space-separated scopes allowed with client_credentials. */
  allowed_scopes: string | null
  /** JSON array of resources client_credentials tokens may be for; null: any offering its scopes. */
  allowed_resources: string | null
  /** CIBA: `poll` or `ping` (null for clients that do not use CIBA). */
  backchannel_token_delivery_mode: 'poll' | 'ping' | null
  /** CIBA ping mode: where Deputy posts `{auth_req_id}` once the person decided. */
  backchannel_client_notification_endpoint: string | null
  application_type: string
  client_uri: string | null
  logo_uri: string | null
  /** Metadata as registered or fetched (JSON). */
  metadata: string
  expires_at: number | null
  created_at: number
  updated_at: number
}

export interface ConsentsTable {
  user_id: string
  client_id: string
  resource: string
  /** Space-separated scopes agreed to. */
  scope: string
  created_at: number
  updated_at: number
}

export interface GrantsTable {
  id: string
  user_id: string
  client_id: string
  resource: string
  scope: string
  created_at: number
  revoked_at: number | null
  revoked_reason: string | null
  /** JSON array of RFC 9396 authorization details the person agreed to; '[]' when none. */
  authorization_details: Generated<string>
  /** The redirect URI the grant was authorized for (migration 0018); null without one. */
  redirect_uri: Generated<string | null>
  /** When the token endpoint first and last issued tokens under it (migration 0027). */
  first_used_at: Generated<number | null>
  last_used_at: Generated<number | null>
  /** JSON `[{ scope, sentence }]`: the consent sentences shown when it was made (0027). */
  consent_text: Generated<string | null>
}

export interface AuthorizationRequestsTable {
  /** SHA-256 of the request handle carried by the sign-in and consent pages. */
  id_hash: string
  client_id: string
  /** Validated request parameters (JSON). */
  params: string
  created_at: number
  expires_at: number
}

export interface AuthorizationCodesTable {
  /** SHA-256 of the code. */
  code_hash: string
  grant_id: string
  client_id: string
  user_id: string
  redirect_uri: string
  /** PKCE S256 challenge. */
  code_challenge: string
  resource: string
  scope: string
  nonce: string | null
  auth_time: number
  created_at: number
  expires_at: number
  consumed_at: number | null
  /** When the redemption that consumed the code finished issuing its tokens. */
  redeemed_at: number | null
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied'

export interface ApprovalRequestsTable {
  id: string
  /** SHA-256 of the auth_req_id. */
  auth_req_hash: string
  client_id: string
  user_id: string
  resource: string
  scope: string
  /** JSON array of authorization details (RFC 9396). */
  authorization_details: string
  binding_message: string | null
  status: ApprovalStatus
  delivery_mode: 'poll' | 'ping'
  /** The client_notification_token, sealed (ping mode). */
  notification_token_sealed: string | null
  /** The auth_req_id, sealed (ping mode: the ping names it). */
  auth_req_id_sealed: string | null
  interval_seconds: number
  next_poll_at: number
  created_at: number
  expires_at: number
  decided_at: number | null
  /** JSON actor. */
  decided_by: string | null
  /** When the decision's audit record was written; an approval counts only from then on. */
  decision_recorded_at: number | null
  shown_digest: string | null
  consumed_at: number | null
  /** A sweeper took the undecided, expired request to record `approval.expired` (0011). */
  expiry_claimed_at: number | null
  /** `approval.expired` is in the audit chain (0011); the request may be deleted later. */
  expiry_recorded_at: number | null
}

export interface AuthorizationDetailTypesTable {
  resource: string
  type: string
  description: string
  /** JSON Schema. */
  schema: string
  template: string
  high_risk: number
  created_at: number
  updated_at: number
}

export interface ApprovalNotificationsTable {
  id: string
  approval_id: string
  channel: string
  target: string
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  last_error: string | null
  created_at: number
  updated_at: number
}

export interface NotificationPreferencesTable {
  user_id: string
  channel: string
  /** JSON. */
  settings: string
  created_at: number
  updated_at: number
}

/** Issuers of jwt-bearer assertions an operator trusts, and ID-JAG audiences (migration 0022). */
export interface TrustedIssuersTable {
  name: string
  kind: 'workload' | 'enterprise-idp' | 'resource-as'
  issuer: string
  /** `assertions` (workload, enterprise-idp) or `audience` (resource-as); unique with issuer. */
  role: 'assertions' | 'audience'
  jwks_uri: string | null
  /** A JWK Set (JSON) read from a file when the issuer was added. */
  jwks: string | null
  /** Space-separated JWS algorithms. */
  algorithms: string
  audience: string | null
  max_lifetime_seconds: number
  link_provider: string | null
  match_email: number
  /** JSON `[{client, claims}]`. */
  rules: string
  created_at: number
  updated_at: number
}

export interface ClientMetadataHostsTable {
  /** Lower-case host (with a non-default port) of Client ID Metadata Document URLs. */
  host: string
  resource: string
  /** Space-separated scopes the operator granted there; never empty. */
  scope: string
  created_at: number
  updated_at: number
}

/** The operator's delegation rules (RFC 8693 token exchange, docs/delegation.md). */
export interface DelegationRulesTable {
  /** The client that may act for a person. */
  client_id: string
  /** A resource its exchanged tokens may be for. */
  resource: string
  /** 1 when its tokens there carry no `act` (impersonation). */
  impersonate: number
  created_at: number
}

export interface RefreshTokensTable {
  /** SHA-256 of the token. */
  token_hash: string
  grant_id: string
  client_id: string
  user_id: string
  resource: string
  scope: string
  created_at: number
  expires_at: number
  rotated_at: number | null
  /** Hash of the successor token. */
  replaced_by: string | null
  /** RFC 9449 §5: thumbprint of the DPoP key a public client's family is bound to (0017). */
  dpop_jkt: string | null
}

export interface RevokedAccessTokensTable {
  jti: string
  expires_at: number
}

export interface ClientAssertionJtisTable {
  client_id: string
  jti: string
  expires_at: number
}

export interface McpUserStateTable {
  /** The MCP server's resource indicator. */
  resource: string
  /** The person, as the access token's `sub`. */
  sub: string
  key: string
  /** JSON. */
  value: string
  /** 1 on insert, +1 on every update. */
  version: number
  updated_at: number
}

export interface McpShopOrdersTable {
  id: string
  resource: string
  sub: string
  /** The agent (OAuth client) that placed the order. */
  client_id: string | null
  email: string | null
  company: string
  mailing_address: string
  /** S, M, L, XL or XXL. */
  tshirt_size: string
  status: string
  created_at: number
}

export type UserRow = Selectable<UsersTable>
export type NewUserRow = Insertable<UsersTable>
export type UserUpdate = Updateable<UsersTable>
export type SigningKeyRow = Selectable<SigningKeysTable>
export type AuditEventRow = Selectable<AuditEventsTable>
export type SessionRow = Selectable<SessionsTable>
export type ClientRow = Selectable<ClientsTable>
export type ResourceRow = Selectable<ResourcesTable>

// Generated is re-exported for later migrations' tables.
export type { Generated }

/** One row (id 1): the policy-set version every process polls. */
export interface PolicySetTable {
  id: number
  version: number
  updated_at: number
}

export interface PolicyVersionsTable {
  policy_id: string
  version: number
  set_version: number
  /** One Cedar statement; null for the version that removed the policy. */
  text: string | null
  created_at: number
  /** `type:id` of the actor. */
  created_by: string
}

/** One tool of one server (primary key: resource, name), since migration 0007. */
export interface PolicyActionsTable {
  /** The MCP server's resource indicator. */
  resource: string
  /** The tool's name; the Cedar action id is `<resource>#<name>`. */
  name: string
  description: string | null
  /** JSON Schema (object) of the tool's arguments, or null. */
  arguments: string | null
  /** JSON Schema (object) of the person's state keys policies may read, or null. */
  state: string | null
  updated_at: number
}

export interface RelationshipTuplesTable {
  object_type: string
  object_id: string
  relation: string
  subject_type: string
  subject_id: string
  /** '' for a plain subject; the relation of a userset subject (`group:eng#member`). */
  subject_relation: string
  created_at: number
}

export type ProviderType = 'github' | 'google' | 'microsoft' | 'slack' | 'oidc' | 'oauth2'

/** An upstream provider the operator configured (migration 0012). */
export interface ProvidersTable {
  name: string
  type: ProviderType
  display_name: string
  client_id: string
  /** Sealed with associated data `providers:<name>:client_secret`. */
  client_secret_sealed: string | null
  issuer: string | null
  /** JSON object of endpoints (ProviderEndpoints). */
  endpoints: string
  /** JSON array of 'sign-in' | 'connect'. */
  uses: string
  /** JSON array of scopes. */
  scopes: string
  /** JSON array of role names. */
  default_roles: string
  /** JSON array of client ids allowed to exchange for this provider's tokens. */
  allowed_clients: string
  status: 'active' | 'disabled'
  created_at: number
  updated_at: number
}

/** Which person an upstream account signs in as. */
export interface ProviderIdentitiesTable {
  provider: string
  subject: string
  user_id: string
  email: string | null
  /** JSON object of mapped claims. */
  claims: string
  created_at: number
  last_sign_in_at: number | null
}

/** A redirect to a provider in progress. */
export interface ProviderFlowsTable {
  /** SHA-256 of `state`. */
  state_hash: string
  kind: 'sign-in' | 'connect'
  provider: string
  /** Sealed JSON {codeVerifier, nonce}, associated data `provider_flows:<state_hash>`. */
  secrets_sealed: string
  user_id: string | null
  client_id: string | null
  /** JSON array of scopes asked for. */
  scopes: string
  return_to: string | null
  created_at: number
  expires_at: number
}

/** A person's connected account (the token vault). */
export interface ConnectionsTable {
  id: string
  user_id: string
  provider: string
  status: 'active' | 'needs_reconnect'
  account_subject: string | null
  account_label: string | null
  /** JSON array of granted scopes. */
  scopes: string
  /** Sealed, associated data `connections:<id>:<user_id>:<provider>:access_token`. */
  access_token_sealed: string
  access_token_expires_at: number | null
  /** Sealed, associated data `connections:<id>:<user_id>:<provider>:refresh_token`. */
  refresh_token_sealed: string | null
  token_version: number
  refresh_failures: number
  refresh_not_before: number | null
  /** Migration 0015: a process has claimed the refresh until then (epoch ms). */
  refresh_lease_until: number | null
  last_error: string | null
  last_used_at: number | null
  created_at: number
  updated_at: number
}

/** A signed checkpoint of the audit chain's head (migration 0019). */
export interface AuditCheckpointsTable {
  /** The chain position it vouches for. */
  seq: number
  /** That record's hash. */
  hash: string
  /** Compact JWS, typ `deputy-audit-checkpoint+jwt`, claims iss, iat, seq, hash. */
  jws: string
  created_at: number
}

/** A change counter per cached kind (migration 0024, store/invalidations.ts). */
export interface CacheVersionsTable {
  /** `clients`, `resources`, `signing_keys`. */
  kind: string
  version: number
}

/** A person's passkey, a WebAuthn credential (migration 0025). */
export interface PasskeysTable {
  /** The credential id, base64url (as the browser sends it). */
  credential_id: string
  user_id: string
  /** The COSE public key, base64url. Public: verifying needs it, nothing else does. */
  public_key: string
  /** The signature counter the authenticator last reported (0 for those that keep none). */
  counter: ColumnType<number, number | undefined, number>
  /** JSON array of transports the browser named at registration. */
  transports: string
  name: string
  created_at: number
  last_used_at: number | null
}

/** A WebAuthn challenge by digest: a registration's (bound to a session) or a used sign-in's. */
export interface PasskeyChallengesTable {
  /** SHA-256 of the challenge (its base64url text). */
  challenge_hash: string
  purpose: 'register' | 'sign-in'
  /** Registration: SHA-256 of the session id; sign-in: null. */
  session_hash: string | null
  expires_at: number
}
