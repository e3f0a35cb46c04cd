import type { Kysely } from 'kysely'
import { z } from 'zod'
import type { RefusalLog } from '../audit/refusals.js'
import type { Actor, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import { parseInput } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import { jsonValueProblem } from '../lib/json-input.js'
import { randomToken, safeEqual, sha256 } from '../lib/random.js'
import { createRateLimiter, RateLimited } from '../lib/rate-limit.js'
import type { SafeFetchOptions } from '../lib/safe-fetch.js'
import { createTtlCache } from '../lib/ttl-cache.js'
import type { Store } from '../store/db.js'
import type { ClientAuthMethod, ClientKind, ClientRow, Database } from '../store/schema.js'
import {
  type ClientMetadataDocument,
  ClientMetadataRefused,
  fetchClientMetadataDocument,
  isClientIdUrl,
} from './cimd.js'
import type { OAuthError } from './errors.js'
import { assertRedirectUris } from './redirect-uris.js'
import { ResourceUriSchema, ScopeNameSchema } from './resources.js'

/** OpenID CIBA Core 1.0 §4: the grant type of backchannel authentication. */
export const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba'

/** RFC 8693 §2.1: the grant type of token exchange. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange'

/** RFC 7523 §2.1: the grant type of an assertion (a workload's token, an ID-JAG). */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

export type GrantType =
  | 'authorization_code'
  | 'refresh_token'
  | 'client_credentials'
  | typeof CIBA_GRANT_TYPE
  | typeof TOKEN_EXCHANGE_GRANT_TYPE
  | typeof JWT_BEARER_GRANT_TYPE

/** CIBA §5: how a client gets its tokens (push mode is not offered). */
export type BackchannelDeliveryMode = 'poll' | 'ping'

/** An OAuth client: an agent, an MCP client, an app. */
export interface Client {
  clientId: string
  kind: ClientKind
  name: string
  status: 'active' | 'disabled'
  redirectUris: string[]
  grantTypes: GrantType[]
  tokenEndpointAuthMethod: ClientAuthMethod
  /** Public keys for private_key_jwt. */
  jwks: { keys: Record<string, unknown>[] } | null
  jwksUri: string | null
  /** Scopes the client may request with client_credentials, per resource-independent name. */
  allowedScopes: string[]
  /**
   * The resources an operator allowed client_credentials tokens for; null: any resource offering
   * one of `allowedScopes`. Only operators set these two; a self-asserted client has neither.
   */
  allowedResources: string[] | null
  applicationType: string
  clientUri: string | null
  logoUri: string | null
  /** CIBA: `poll` or `ping` for a client registered for backchannel authentication. */
  backchannelTokenDeliveryMode: BackchannelDeliveryMode | null
  /** CIBA ping mode: where Deputy posts `{auth_req_id}` when the person has decided. */
  backchannelClientNotificationEndpoint: string | null
  /** Epoch ms after which a dynamic registration lapses or a metadata document is refetched. */
  expiresAt: number | null
  createdAt: string
}

export const CLIENT_AUTH_METHODS = [
  'none',
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
] as const satisfies readonly ClientAuthMethod[]

export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  CIBA_GRANT_TYPE,
  TOKEN_EXCHANGE_GRANT_TYPE,
  JWT_BEARER_GRANT_TYPE,
] as const

export function rowToClient(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    kind: row.kind,
    name: row.name,
    status: row.status,
    redirectUris: JSON.parse(row.redirect_uris) as string[],
    grantTypes: JSON.parse(row.grant_types) as GrantType[],
    tokenEndpointAuthMethod: row.token_endpoint_auth_method,
    jwks: row.jwks ? (JSON.parse(row.jwks) as Client['jwks']) : null,
    jwksUri: row.jwks_uri,
    allowedScopes: row.allowed_scopes ? row.allowed_scopes.split(' ') : [],
    allowedResources: row.allowed_resources
      ? (JSON.parse(row.allowed_resources) as string[])
      : null,
    applicationType: row.application_type,
    clientUri: row.client_uri,
    logoUri: row.logo_uri,
    backchannelTokenDeliveryMode: row.backchannel_token_delivery_mode,
    backchannelClientNotificationEndpoint: row.backchannel_client_notification_endpoint,
    expiresAt: row.expires_at,
    createdAt: new Date(row.created_at).toISOString(),
  }
}

export const RegisterClientSchema = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  redirectUris: z.array(z.string()).default([]),
  grantTypes: z.array(z.enum(GRANT_TYPES)).optional(),
  tokenEndpointAuthMethod: z.enum(CLIENT_AUTH_METHODS).optional(),
  /** True for a public client (no secret, `none`). */
  public: z.boolean().default(false),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
  /**
   * Where the client publishes its public keys instead (RFC 7591 §2): fetched through the SSRF
   * guard, which also refuses plain http except on loopback with the development setting.
   */
  jwksUri: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
  allowedScopes: z.array(ScopeNameSchema).default([]),
  allowedResources: z
    .array(ResourceUriSchema)
    .min(1, 'must list at least one resource')
    .max(100)
    .optional(),
  applicationType: z.enum(['web', 'native']).default('web'),
  clientUri: z.url({ protocol: /^https?$/ }).optional(),
  logoUri: z.url({ protocol: /^https$/ }).optional(),
  backchannelTokenDeliveryMode: z.enum(['poll', 'ping']).optional(),
  backchannelClientNotificationEndpoint: z
    .url({ protocol: /^https?$/ })
    .refine((value) => {
      const url = new URL(value)
      return (
        url.hash === '' &&
        (url.protocol === 'https:' || ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname))
      )
    }, 'must be an https URL (http only on loopback) without a fragment')
    .optional(),
})
export type RegisterClientInput = z.input<typeof RegisterClientSchema>

/** How a client came to be, for `register`. */
export interface RegisterOptions {
  kind?: ClientKind
  /** Epoch ms after which the registration lapses (dynamic registrations may expire). */
  expiresAt?: number | null
  /** The metadata as the client sent it, kept for display and audit. */
  metadata?: Record<string, unknown>
  requestId?: string
}

/** Settings the clients registry reads, and test overrides for metadata document fetches. */
export interface ClientsDeps {
  store: Store
  clock: Clock
  audit: AuditLog
  /** Where metadata document refusals go (summarised); `audit` itself when absent. */
  refusals?: Pick<RefusalLog, 'record'>
  config?: Pick<
    ResolvedConfig,
    'clientMetadataAllowedHosts' | 'dangerouslyAllowHttpLoopbackClientMetadata'
  > &
    Partial<Pick<ResolvedConfig, 'clientMetadataFetchRateLimit'>>
  /** Limits of metadata document fetches (tests shorten the deadline). */
  metadataFetch?: Pick<SafeFetchOptions, 'timeoutMs' | 'maxBytes'>
  /**
   * How long this process keeps a registered client's row (status, secret digest, grant types)
   * at most; a change made through Deputy anywhere drops it sooner (store/invalidations.ts), so
   * this bounds only changes made behind Deputy's back (SQL by hand). Default 2 s; 0: no cache.
   */
  cacheMs?: number
}

/** How long a registered client's row is reused at most (changes through Deputy drop it at once). */
export const CLIENT_CACHE_MS = 2_000

/**
 * How long a metadata document URL that failed is not fetched again: requests naming a broken
 * URL then cost no fetch and no audit record. Per process, at most `FAILED_DOCUMENTS_MAX` URLs.
 */
export const FAILED_DOCUMENT_MS = 60_000
const FAILED_DOCUMENTS_MAX = 10_000

/** Who caused a lookup, for the rate limit on the metadata document fetches it triggers. */
export interface ResolveOptions {
  /**
   * The client address of the request naming the client (`unknown` when the host cannot tell).
   * Fetches are limited per requester (`clientMetadataFetchRateLimit`); lookups without one
   * (the CLI, the admin API) are not limited.
   */
  requester?: string
}

/** Deputy acting on its own (fetching a metadata document), as the audit chain names it. */
const DEPUTY: Actor = { type: 'system', id: 'deputy' }

/** A newly created client; `clientSecret` is shown once and never stored. */
export interface CreatedClient {
  client: Client
  clientSecret?: string
}

/**
 * The clients registry. Secrets are random 256-bit values stored as SHA-256 digests (slow
 * hashing is for secrets people choose). Disabling or deleting a client ends its grants and
 * refresh tokens at once; its access tokens then introspect as inactive.
 */
export function createClients(deps: ClientsDeps) {
  const db = deps.store.db
  const fetchOptions: SafeFetchOptions = {
    allowedHosts: deps.config?.clientMetadataAllowedHosts ?? [],
    allowHttpLoopback: deps.config?.dangerouslyAllowHttpLoopbackClientMetadata === true,
    ...deps.metadataFetch,
  }
  /** Fetches in flight, so concurrent requests naming one document fetch it once. */
  const inFlight = new Map<string, Promise<Client | undefined>>()
  /** Document URLs that failed lately, so a flood naming one costs no fetch and no record. */
  const failedDocuments = createTtlCache<string, true>(FAILED_DOCUMENT_MS, FAILED_DOCUMENTS_MAX)
  /** Metadata document fetches per requester (client address) and minute. */
  const fetchLimiter = createRateLimiter({
    limit: deps.config?.clientMetadataFetchRateLimit ?? 30,
    perSeconds: 60,
  })
  const refusals = deps.refusals ?? {
    record: async (event: Parameters<AuditLog['append']>[0]) =>
      void (await deps.audit.append(event)),
  }
  /**
   * Registered (non-URL) clients as last read, with their secret digest: the token endpoint reads
   * a client on every request. An entry is dropped when any process changes the client (at once,
   * or within `cacheCheckIntervalMs` if the announcement is lost) and lives `cacheMs` at most.
   */
  const cache = createTtlCache<string, { client: Client; secretHash: string | null }>(
    deps.cacheMs ?? CLIENT_CACHE_MS,
  )
  // A client changed by any process is dropped here at once (store/invalidations.ts).
  deps.store.invalidations.subscribe('clients', (clientId) =>
    clientId === undefined ? cache.clear() : cache.delete(clientId),
  )

  async function getClient(clientId: string): Promise<Client | undefined> {
    const row = await db
      .selectFrom('clients')
      .selectAll()
      .where('client_id', '=', clientId)
      .executeTakeFirst()
    return row ? rowToClient(row) : undefined
  }

  /** A registered client and its secret digest, from the cache while fresh. */
  async function getCached(
    clientId: string,
  ): Promise<{ client: Client; secretHash: string | null } | undefined> {
    const hit = cache.get(clientId)
    if (hit) return hit
    const stamp = cache.stamp()
    const row = await db
      .selectFrom('clients')
      .selectAll()
      .where('client_id', '=', clientId)
      .executeTakeFirst()
    if (!row) return undefined
    const entry = { client: rowToClient(row), secretHash: row.secret_hash }
    cache.set(clientId, entry, stamp)
    return entry
  }

  /** Stores (or refreshes) a metadata-document client; an operator's `disable` is kept. */
  async function storeDocument(
    doc: ClientMetadataDocument,
    ttlSeconds: number,
  ): Promise<Client | undefined> {
    const now = deps.clock.now().getTime()
    const before = await getClient(doc.client_id)
    const method = doc.token_endpoint_auth_method
    const fields = {
      name: doc.client_name,
      redirect_uris: JSON.stringify(doc.redirect_uris),
      grant_types: JSON.stringify(doc.grant_types ?? ['authorization_code', 'refresh_token']),
      token_endpoint_auth_method: method,
      jwks: doc.jwks ? JSON.stringify(doc.jwks) : null,
      jwks_uri: doc.jwks_uri ?? null,
      application_type: doc.application_type ?? 'web',
      client_uri: doc.client_uri ?? null,
      logo_uri: doc.logo_uri ?? null,
      metadata: JSON.stringify(doc),
      expires_at: now + ttlSeconds * 1000,
      updated_at: now,
    }
    await db
      .insertInto('clients')
      .values({
        client_id: doc.client_id,
        kind: 'metadata_document',
        status: 'active',
        secret_hash: null,
        // What a document cannot give itself: machine authority is the operator's (metadata-hosts.ts).
        allowed_scopes: null,
        allowed_resources: null,
        created_at: now,
        ...fields,
      })
      .onConflict((oc) =>
        oc.column('client_id').doUpdateSet(fields).where('clients.kind', '=', 'metadata_document'),
      )
      .execute()
    const client = await getClient(doc.client_id)
    if (before?.kind === 'metadata_document' && client?.kind === 'metadata_document') {
      await endGrantsOfRemovedRedirectUris(before, doc.redirect_uris)
    }
    return client?.kind === 'metadata_document' && client.status === 'active' ? client : undefined
  }

  /**
   * A document fetched again that no longer lists a redirect URI ends the grants authorized for
   * it, and its codes not yet redeemed: whoever answers at the dropped URI is no longer the
   * client the person agreed to (CIMD §4: the document is the registration). Audited first.
   */
  async function endGrantsOfRemovedRedirectUris(
    before: Client,
    redirectUris: readonly string[],
  ): Promise<void> {
    const removed = before.redirectUris.filter((uri) => !redirectUris.includes(uri))
    if (removed.length === 0) return
    const affected = await db
      .selectFrom('grants')
      .select('id')
      .where('client_id', '=', before.clientId)
      .where('redirect_uri', 'in', removed)
      .where('revoked_at', 'is', null)
      .execute()
    const grantIds = affected.map((g) => g.id)
    await deps.audit.append({
      type: 'client-metadata.redirect-uris-removed',
      actor: DEPUTY,
      target: { type: 'client', id: before.clientId },
      decision: 'deny',
      reason: 'redirect-uri-removed-from-document',
      data: { removed, grantsEnded: grantIds.length },
    })
    const now = deps.clock.now().getTime()
    await db.transaction().execute(async (trx) => {
      if (grantIds.length > 0) {
        await trx
          .updateTable('grants')
          .set({ revoked_at: now, revoked_reason: 'redirect-uri-removed' })
          .where('id', 'in', grantIds)
          .where('revoked_at', 'is', null)
          .execute()
        await trx.deleteFrom('refresh_tokens').where('grant_id', 'in', grantIds).execute()
      }
      await trx
        .deleteFrom('authorization_codes')
        .where('client_id', '=', before.clientId)
        .where((eb) =>
          eb.or([
            eb('redirect_uri', 'in', removed),
            ...(grantIds.length > 0 ? [eb('grant_id', 'in', grantIds)] : []),
          ]),
        )
        .execute()
    })
  }

  /**
   * A client named by a URL: the cached document while it is fresh, otherwise the document
   * fetched again. Any failure means "no such client", with the precise reason in the audit chain.
   * Only the request that starts a fetch pays for it against its requester's rate limit; requests
   * naming the same document meanwhile wait for that fetch.
   */
  async function resolveMetadataDocument(
    clientId: string,
    requester: string | undefined,
  ): Promise<Client | undefined> {
    const cached = await getClient(clientId)
    if (cached && (cached.kind !== 'metadata_document' || cached.status !== 'active'))
      return undefined
    if (cached?.expiresAt && cached.expiresAt > deps.clock.now().getTime()) return cached
    if (failedDocuments.get(clientId)) return undefined
    let pending = inFlight.get(clientId)
    if (!pending) {
      if (requester !== undefined) {
        const wait = fetchLimiter.take(requester)
        if (wait > 0) {
          throw new RateLimited(
            'too many requests naming apps Deputy has not seen before; try again later',
            wait,
          )
        }
      }
      pending = fetchMetadataDocument(clientId).finally(() => inFlight.delete(clientId))
      inFlight.set(clientId, pending)
    }
    return pending
  }

  async function fetchMetadataDocument(clientId: string): Promise<Client | undefined> {
    try {
      const { document, ttlSeconds } = await fetchClientMetadataDocument(clientId, fetchOptions)
      // The document's unknown fields are kept as they came; bound them like any JSON input.
      const problem = jsonValueProblem(document)
      if (problem) throw new ClientMetadataRefused(`document ${problem}`)
      return await storeDocument(document, ttlSeconds)
    } catch (err) {
      if (!(err instanceof ClientMetadataRefused)) throw err
      failedDocuments.set(clientId, true)
      await refusals.record({
        type: 'client-metadata.refused',
        actor: DEPUTY,
        target: { type: 'client', id: clientId },
        decision: 'deny',
        reason: err.reason,
      })
      return undefined
    }
  }

  /** Ends a client's grants, refresh tokens and codes, inside the caller's transaction. */
  async function endGrants(trx: Kysely<Database>, clientId: string, reason: string): Promise<void> {
    const now = deps.clock.now().getTime()
    await trx
      .updateTable('grants')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('client_id', '=', clientId)
      .where('revoked_at', 'is', null)
      .execute()
    await trx.deleteFrom('refresh_tokens').where('client_id', '=', clientId).execute()
    await trx.deleteFrom('authorization_codes').where('client_id', '=', clientId).execute()
  }

  return {
    /** The client with this id, or undefined (metadata-document clients: see cimd.ts). */
    async get(clientId: string): Promise<Client | undefined> {
      return getClient(clientId)
    },

    /**
     * The client a request names, if it may be used now: active and not expired. This is what the
     * authorization and token endpoints call; URL-formatted ids (Client ID Metadata Documents) are
     * fetched and cached here (a fetch past the requester's rate limit throws `RateLimited`).
     */
    async resolve(clientId: string, options: ResolveOptions = {}): Promise<Client | undefined> {
      if (isClientIdUrl(clientId)) {
        // CIMD §4: the client identifier is a URL and the document it names is the registration.
        return resolveMetadataDocument(clientId, options.requester)
      }
      const client = (await getCached(clientId))?.client
      if (client?.status !== 'active') return undefined
      if (client.expiresAt !== null && client.expiresAt <= deps.clock.now().getTime())
        return undefined
      return client
    },

    async list(): Promise<Client[]> {
      const rows = await db.selectFrom('clients').selectAll().orderBy('created_at').execute()
      return rows.map(rowToClient)
    },

    /** Pre-registers a client (`deputy clients add`, admin API). */
    async register(
      input: RegisterClientInput,
      actor: Actor,
      options: RegisterOptions = {},
    ): Promise<CreatedClient> {
      const kind = options.kind ?? 'registered'
      const parsed = parseInput(RegisterClientSchema, input, 'client')
      const method: ClientAuthMethod =
        parsed.tokenEndpointAuthMethod ??
        (parsed.public
          ? 'none'
          : parsed.jwks || parsed.jwksUri
            ? 'private_key_jwt'
            : 'client_secret_basic')
      if (parsed.public && method !== 'none') {
        throw new DeputyError('ERR_INVALID_INPUT', 'a public client authenticates with "none"')
      }
      if (method === 'private_key_jwt' && !parsed.jwks && !parsed.jwksUri) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          "private_key_jwt needs the client's public keys (jwks or jwksUri)",
        )
      }
      // RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
      if (parsed.jwks && parsed.jwksUri) {
        throw new DeputyError('ERR_INVALID_INPUT', 'give jwks or jwksUri, not both')
      }
      const grantTypes =
        parsed.grantTypes ??
        (parsed.redirectUris.length > 0
          ? ['authorization_code', 'refresh_token']
          : ['client_credentials'])
      if (grantTypes.includes('client_credentials') && method === 'none') {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'client_credentials needs a confidential client (a secret or keys)',
        )
      }
      // RFC 8693 §2.1 allows public clients; Deputy's profiles do not (the vault's tokens go
      // only to a client an operator can name and hold to account).
      if (grantTypes.includes(TOKEN_EXCHANGE_GRANT_TYPE) && method === 'none') {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'token exchange needs a confidential client (a secret or keys)',
        )
      }
      // CIBA §4: only confidential clients, with a delivery mode (poll by default); ping mode
      // needs the endpoint it is pinged at.
      const ciba = grantTypes.includes(CIBA_GRANT_TYPE)
      if (ciba && method === 'none') {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'CIBA needs a confidential client (a secret or keys)',
        )
      }
      if (
        !ciba &&
        (parsed.backchannelTokenDeliveryMode || parsed.backchannelClientNotificationEndpoint)
      ) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `a backchannel delivery mode needs the ${CIBA_GRANT_TYPE} grant type`,
        )
      }
      const deliveryMode = ciba ? (parsed.backchannelTokenDeliveryMode ?? 'poll') : null
      if (deliveryMode === 'ping' && !parsed.backchannelClientNotificationEndpoint) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'ping mode needs a backchannel client notification endpoint',
        )
      }
      if (deliveryMode === 'poll' && parsed.backchannelClientNotificationEndpoint) {
        throw new DeputyError('ERR_INVALID_INPUT', 'a notification endpoint is only for ping mode')
      }
      // Authority without a person comes only from an operator: a client that registered itself
      // (RFC 7591) gets no machine grant, scopes or resources, whatever the caller passed on.
      if (
        kind !== 'registered' &&
        (grantTypes.includes('client_credentials') ||
          parsed.allowedScopes.length > 0 ||
          parsed.allowedResources !== undefined)
      ) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'only an operator can give a client client_credentials, scopes or resources',
        )
      }
      if (grantTypes.includes('client_credentials') && parsed.allowedScopes.length === 0) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'client_credentials needs at least one allowed scope (what the client may do on its own)',
        )
      }
      const allowedResources = parsed.allowedResources
        ? [...new Set(parsed.allowedResources)]
        : null
      if (allowedResources) {
        const known = await db
          .selectFrom('resources')
          .select('uri')
          .where('uri', 'in', allowedResources)
          .execute()
        const missing = allowedResources.filter((uri) => !known.some((r) => r.uri === uri))
        if (missing.length > 0)
          throw new DeputyError('ERR_INVALID_INPUT', `no resource ${missing[0]} is registered`)
      }
      if (grantTypes.includes('authorization_code') || parsed.redirectUris.length > 0) {
        try {
          assertRedirectUris(parsed.redirectUris)
        } catch (err) {
          throw new DeputyError('ERR_INVALID_INPUT', (err as OAuthError).description)
        }
      }
      const clientId = kind === 'dynamic' ? `dyn_${randomToken(16)}` : `client_${randomToken(12)}`
      const clientSecret =
        method === 'client_secret_basic' || method === 'client_secret_post'
          ? randomToken(32)
          : undefined
      const now = deps.clock.now().getTime()
      await db
        .insertInto('clients')
        .values({
          client_id: clientId,
          kind,
          name: parsed.name,
          status: 'active',
          redirect_uris: JSON.stringify(parsed.redirectUris),
          grant_types: JSON.stringify(grantTypes),
          token_endpoint_auth_method: method,
          secret_hash: clientSecret ? sha256(clientSecret) : null,
          jwks: parsed.jwks ? JSON.stringify(parsed.jwks) : null,
          jwks_uri: parsed.jwksUri ?? null,
          allowed_scopes: parsed.allowedScopes.length > 0 ? parsed.allowedScopes.join(' ') : null,
          allowed_resources: allowedResources ? JSON.stringify(allowedResources) : null,
          backchannel_token_delivery_mode: deliveryMode,
          backchannel_client_notification_endpoint:
            parsed.backchannelClientNotificationEndpoint ?? null,
          application_type: parsed.applicationType,
          client_uri: parsed.clientUri ?? null,
          logo_uri: parsed.logoUri ?? null,
          metadata: JSON.stringify(options.metadata ?? {}),
          expires_at: options.expiresAt ?? null,
          created_at: now,
          updated_at: now,
        })
        .execute()
      await deps.audit.append({
        type: 'client.registered',
        actor,
        target: { type: 'client', id: clientId },
        requestId: options.requestId ?? null,
        data: {
          kind,
          name: parsed.name,
          redirectUris: parsed.redirectUris,
          grantTypes,
          tokenEndpointAuthMethod: method,
        },
      })
      const client = rowToClient(
        await db
          .selectFrom('clients')
          .selectAll()
          .where('client_id', '=', clientId)
          .executeTakeFirstOrThrow(),
      )
      return clientSecret ? { client, clientSecret } : { client }
    },

    /** Compares a presented secret with the stored digest in constant time. */
    async verifySecret(clientId: string, secret: string): Promise<boolean> {
      const secretHash = isClientIdUrl(clientId)
        ? null
        : ((await getCached(clientId))?.secretHash ?? null)
      return !!secretHash && safeEqual(secretHash, sha256(secret))
    },

    /** Disables a client: no new tokens, its grants and refresh tokens end now. */
    async disable(clientId: string, actor: Actor): Promise<void> {
      // The status, the end of its grants and the change counter commit together: no replica
      // can see a disabled client whose refresh tokens still work, or miss the change.
      const found = await db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('clients')
          .set({ status: 'disabled', updated_at: deps.clock.now().getTime() })
          .where('client_id', '=', clientId)
          .executeTakeFirst()
        if (Number(result.numUpdatedRows) === 0) return false
        await endGrants(trx, clientId, 'client-disabled')
        await deps.store.invalidations.mark(trx, 'clients')
        return true
      })
      if (!found) throw new DeputyError('ERR_NOT_FOUND', `no client ${clientId}`)
      await deps.store.invalidations.announce('clients', clientId)
      await deps.audit.append({
        type: 'client.disabled',
        actor,
        target: { type: 'client', id: clientId },
      })
    },

    /**
     * Enables a disabled client again: it may ask for tokens anew (the grants that ended when it
     * was disabled stay ended; people consent again).
     */
    async enable(clientId: string, actor: Actor): Promise<void> {
      const row = await db
        .selectFrom('clients')
        .select('client_id')
        .where('client_id', '=', clientId)
        .executeTakeFirst()
      if (!row) throw new DeputyError('ERR_NOT_FOUND', `no client ${clientId}`)
      // Recorded before it is in force: enabling lets the client ask for tokens again.
      await deps.audit.append({
        type: 'client.enabled',
        actor,
        target: { type: 'client', id: clientId },
      })
      await db
        .updateTable('clients')
        .set({ status: 'active', updated_at: deps.clock.now().getTime() })
        .where('client_id', '=', clientId)
        .execute()
      cache.delete(clientId)
    },

    /** Deletes a client and everything it held. */
    async delete(clientId: string, actor: Actor): Promise<void> {
      const found = await db.transaction().execute(async (trx) => {
        await endGrants(trx, clientId, 'client-deleted')
        const result = await trx
          .deleteFrom('clients')
          .where('client_id', '=', clientId)
          .executeTakeFirst()
        if (Number(result.numDeletedRows) === 0) return false
        await deps.store.invalidations.mark(trx, 'clients')
        return true
      })
      if (!found) throw new DeputyError('ERR_NOT_FOUND', `no client ${clientId}`)
      await deps.store.invalidations.announce('clients', clientId)
      await deps.audit.append({
        type: 'client.deleted',
        actor,
        target: { type: 'client', id: clientId },
      })
    },
  }
}

export type Clients = ReturnType<typeof createClients>
