import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import pino, { type Logger } from 'pino'
import { createAdminApi } from './admin/api.js'
import { type AdminApiKeys, createAdminApiKeys } from './admin/api-keys.js'
import { requireAdmin } from './admin/auth.js'
import { createApprovalAdminApi } from './approvals/admin-api.js'
import { APPROVAL_ADMIN_ROUTES } from './approvals/admin-routes.js'
import { notificationChannels } from './approvals/channels.js'
import { createDetailTypes, type DetailTypes } from './approvals/detail-types.js'
import { createInboxRoutes } from './approvals/inbox.js'
import {
  type ApprovalNotifier,
  createApprovalNotifier,
  type NotificationChannel,
} from './approvals/notify.js'
import { createPreferencesRoutes } from './approvals/preferences.js'
import { type ApprovalRequests, createApprovalRequests } from './approvals/requests.js'
import { createAuditLog } from './audit/chain.js'
import { writeCheckpoint } from './audit/checkpoints.js'
import { createRefusalLog, type RefusalLog } from './audit/refusals.js'
import type { AuditLog } from './audit/types.js'
import type { ResolvedConfig } from './config/load.js'
import { createConsoleRoutes } from './console/routes.js'
import { clientAddressMiddleware, trustedProxies } from './http/client-address.js'
import type { AppEnv } from './http/env.js'
import { errorResponse } from './http/errors.js'
import { createMetrics, type Metrics } from './http/metrics.js'
import { refuseNulInPath, requestContext, securityHeaders } from './http/middleware.js'
import { createRateLimits, type RateLimits } from './http/rate-limits.js'
import { createPasskeyRoutes } from './identity/passkey-routes.js'
import { createPasskeys, PASSKEY_CHALLENGE_DIGEST, type Passkeys } from './identity/passkeys.js'
import { createRoles, type Roles } from './identity/roles.js'
import { createIdentityRoutes } from './identity/routes.js'
import { readSession } from './identity/sessions.js'
import { createUsers, type Users } from './identity/users.js'
import { createKeyedDigest, LOGIN_EMAIL_DIGEST } from './keys/digest.js'
import { createSealer } from './keys/envelope.js'
import { jwksRoutes } from './keys/jwks.js'
import { createMasterKeyRing, type MasterKeyRing } from './keys/key-ring.js'
import { loadMasterKey, type MasterKeySource } from './keys/master-key.js'
import { createSigningKeys } from './keys/signing-keys.js'
import type { Sealer, SigningKeys } from './keys/types.js'
import { bodyLimit } from './lib/body-limit.js'
import { type Clock, systemClock } from './lib/clock.js'
import { DeputyError } from './lib/errors.js'
import { sweepExpiredRows } from './maintenance/sweep.js'
import { createOAuthAdminApi } from './oauth/admin-api.js'
import { createAgentsRoutes } from './oauth/agents.js'
import { type AuthorizationCodes, createAuthorizationCodes } from './oauth/authorization-codes.js'
import { createAuthorizeRoutes } from './oauth/authorize.js'
import { createBackchannelRoutes } from './oauth/backchannel.js'
import { type ClientJwks, createClientJwks } from './oauth/client-jwks.js'
import { type Clients, createClients } from './oauth/clients.js'
import { scopeSentence } from './oauth/consent.js'
import { createDelegationRules, type DelegationRules } from './oauth/delegation-rules.js'
import { createGrants, type Grants } from './oauth/grants.js'
import { createIntrospectionRoutes } from './oauth/introspect.js'
import { createMetadataRoutes } from './oauth/metadata.js'
import { createMetadataHosts, type MetadataHosts } from './oauth/metadata-hosts.js'
import { createRefreshTokens, type RefreshTokens } from './oauth/refresh-tokens.js'
import { createRegistrationRoutes } from './oauth/register.js'
import { createResources, type Resources } from './oauth/resources.js'
import { createRevocationRoutes } from './oauth/revoke.js'
import { createTokenRoutes } from './oauth/token.js'
import {
  createTrustedIssuerAdminApi,
  TRUSTED_ISSUER_ADMIN_ROUTES,
} from './oauth/trusted-issuer-routes.js'
import { createTrustedIssuers, type TrustedIssuers } from './oauth/trusted-issuers.js'
import { createUserinfoRoutes } from './oauth/userinfo.js'
import { createPolicyAdminApi } from './policy/admin-api.js'
import { POLICY_ADMIN_ROUTES } from './policy/admin-routes.js'
import { createPolicyEngine } from './policy/engine.js'
import { createPolicies } from './policy/policies.js'
import { createRelationships } from './policy/relationships.js'
import type { Policies, PolicyEngine, Relationships } from './policy/types.js'
import { createProviderAdminApi } from './providers/admin-api.js'
import { PROVIDER_ADMIN_ROUTES } from './providers/admin-routes.js'
import { createProviderFlows, type ProviderFlows } from './providers/flows.js'
import { createProviders } from './providers/registry.js'
import { createProviderSignInRoutes, signInProviders } from './providers/sign-in-routes.js'
import type { Providers } from './providers/types.js'
import { openStore, type Store } from './store/db.js'
import { migrateToLatest } from './store/migrate.js'
import type { Database } from './store/schema.js'
import { notFoundResponse } from './ui/not-found.js'
import { createVaultRoutes } from './vault/routes.js'
import type { Vault } from './vault/types.js'
import { createVault } from './vault/vault.js'

/** What every module is handed: narrow, explicit dependencies (no module-level singletons). */
export interface DeputyDeps {
  config: ResolvedConfig
  store: Store
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  audit: AuditLog
  /**
   * Where refusals of anonymous requests are recorded: the first of a kind in full, repeats
   * summarised (audit/refusals.ts), so nobody can grow the chain without bound.
   */
  refusals: RefusalLog
  /**
   * A keyed digest of a normalised email (`hmac-sha-256:<hex>`): how a typed email that matches
   * no account appears in the audit chain and the sign-in throttle.
   */
  emailDigest(email: string): string
  sealer: Sealer
  /** The master keys this process knows (the sealer's); `deputy keys rotate-master` uses it. */
  masterKeys: MasterKeyRing
  signingKeys: SigningKeys
  users: Users
  /** People's passkeys: registration, sign-in, removal (identity/passkeys.ts). */
  passkeys: Passkeys
  roles: Roles
  /** Keys for the admin API (shown once, stored as digests). */
  adminApiKeys: AdminApiKeys
  resources: Resources
  clients: Clients
  /** Key sets of clients that publish a `jwks_uri`, for private_key_jwt. */
  clientJwks: ClientJwks
  /** The operator's allow-list of Client ID Metadata Document hosts for machine tokens. */
  metadataHosts: MetadataHosts
  /** Who may act for whom through token exchange (docs/delegation.md). */
  delegationRules: DelegationRules
  /** Workload issuers, enterprise IdPs and ID-JAG audiences the operator trusts (jwt-bearer). */
  trustedIssuers: TrustedIssuers
  /** Key sets at trusted issuers' JWKS URLs (fetched, cached, refetched on a new kid). */
  issuerJwks: ClientJwks
  grants: Grants
  authorizationCodes: AuthorizationCodes
  /** Rotating refresh tokens (stored as digests). */
  refreshTokens: RefreshTokens
  /** Backchannel authentication (CIBA) requests: asks waiting for a person's decision. */
  approvals: ApprovalRequests
  /** RFC 9396 authorization detail types per resource. */
  detailTypes: DetailTypes
  /** Tells people about requests through their channels, and CIBA ping-mode clients about decisions. */
  notifier: ApprovalNotifier
  /** The notification channels people may choose besides the inbox (approvals/channels.ts). */
  notificationChannels: readonly NotificationChannel[]
  /** Versioned Cedar policies and the declared actions. */
  policies: Policies
  /** Relationship tuples (object#relation@subject). */
  relationships: Relationships
  /** The policy decision point. */
  policy: PolicyEngine
  /** Prometheus metrics (served at /metrics to administrators, or on `metricsPort`). */
  metrics: Metrics
  /** Redirects to upstream providers in progress (sign-in and connect): state, PKCE, nonce. */
  providerFlows: ProviderFlows
  /** Upstream providers (sign in with GitHub …, connected accounts) and the protocol to them. */
  providers: Providers
  /** Connected accounts: sealed upstream tokens, refresh that never races (vault/). */
  vault: Vault
  /** Request limits per client, address and person, shared by the replicas (http/rate-limits.ts). */
  rateLimits: RateLimits
}

export interface CreateDeputyOptions {
  clock?: Clock
  logger?: Logger
  /** Run migrations on open (default true). */
  migrate?: boolean
  /**
   * Notification channels people may choose besides the built-in ones (approvals/channels.ts:
   * email when `smtpUrl` is set, signed webhooks); one with a built-in's name replaces it.
   */
  notificationChannels?: readonly NotificationChannel[]
  /** Adds Node's process metrics (CPU, memory, event loop) to /metrics: for a served process. */
  processMetrics?: boolean
}

/** Opens storage and keys and wires the modules together, without HTTP (the CLI uses this). */
export async function openDeputy(
  config: ResolvedConfig,
  options: CreateDeputyOptions = {},
): Promise<{ deps: DeputyDeps; masterKey: MasterKeySource; close(): Promise<void> }> {
  const masterKey = loadMasterKey(config)
  const store = openStore(config.database, { cacheCheckIntervalMs: config.cacheCheckIntervalMs })
  try {
    if (options.migrate !== false) await migrateToLatest(store)
  } catch (err) {
    await store.close()
    throw err
  }
  const clock = options.clock ?? systemClock
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'deputy' } })
  // A key file is followed, so a rotation's new key seals here without a restart (keys/key-ring.ts).
  const masterKeys = createMasterKeyRing({
    source: masterKey,
    ...(masterKey.origin === 'environment' ? {} : { file: config.masterKeyFile }),
  })
  const sealer = createSealer(masterKeys)
  const metrics = createMetrics(
    {
      pendingApprovals: async () => {
        const row = await store.db
          .selectFrom('approval_requests')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', '=', 'pending')
          .where('expires_at', '>', clock.now().getTime())
          .executeTakeFirst()
        return Number(row?.n ?? 0)
      },
      ...(store.poolStats && { poolStats: store.poolStats }),
    },
    { processMetrics: options.processMetrics === true },
  )
  const audit = metrics.observeAudit(createAuditLog(store, clock))
  const refusals = metrics.observeRefusals(
    createRefusalLog(audit, clock, {
      windowSeconds: config.auditRefusalSummarySeconds,
      onError: (err) => logger.error({ err }, 'audit refusal summary not written'),
    }),
  )
  let rateLimits: RateLimits
  try {
    rateLimits = await createRateLimits({
      config,
      store,
      logger,
      onRefused: (limit) => metrics.rateLimited(limit),
    })
  } catch (err) {
    await store.close()
    throw new DeputyError(
      'ERR_CONFIG_INVALID',
      `cannot reach the Redis of redisUrl: ${(err as Error).message || 'connection refused'}`,
      { cause: err },
    )
  }
  const users = createUsers({ store, clock, audit })
  const clients = createClients({ store, clock, audit, refusals, config })
  const grants = createGrants({ store, clock, audit })
  // A write in this process is in force here at once, and announced to the others, which reload
  // at once (and poll the set version every policyRefreshIntervalMs, should an announcement be
  // lost). An engine that has not loaded yet loads the new version on its first decision anyway.
  const policies = createPolicies({
    store,
    clock,
    audit,
    onChange: async () => {
      if (policy.loadedVersion() >= 0) await policy.refresh()
      await store.invalidations.announce('policies')
    },
  })
  store.invalidations.subscribe('policies', () => {
    if (policy.loadedVersion() >= 0) void policy.refresh()
  })
  const relationships = createRelationships({ store, clock, audit })
  const policy = createPolicyEngine({
    store,
    clock,
    audit,
    logger,
    policies,
    relationships,
    users,
    clients,
    grants,
    refreshIntervalMs: config.policyRefreshIntervalMs,
  })
  const approvals = createApprovalRequests({ store, clock, sealer, audit })
  const channels = notificationChannels({ config, sealer, clock }, options.notificationChannels)
  const notifier = createApprovalNotifier({
    db: store.db,
    clock,
    audit,
    logger,
    approvals,
    channels,
    fetchOptions: { allowHttpLoopback: config.dangerouslyAllowHttpLoopbackNotifications },
  })
  const providers = createProviders({
    store,
    clock,
    audit,
    sealer,
    allowHttpLoopback: config.dangerouslyAllowHttpLoopbackProviders,
  })
  const deps: DeputyDeps = {
    config,
    store,
    db: store.db,
    clock,
    logger,
    audit,
    refusals,
    metrics,
    rateLimits,
    emailDigest: createKeyedDigest(masterKeys, LOGIN_EMAIL_DIGEST),
    sealer,
    masterKeys,
    users,
    passkeys: createPasskeys({
      db: store.db,
      clock,
      config,
      users,
      audit,
      refusals,
      challengeMac: createKeyedDigest(masterKeys, PASSKEY_CHALLENGE_DIGEST),
    }),
    roles: createRoles({ store, clock, audit }),
    adminApiKeys: createAdminApiKeys({ store, clock, audit }),
    resources: createResources({ store, clock, audit }),
    clients,
    clientJwks: createClientJwks({
      clock,
      // The same guard as metadata documents: the same allowed hosts and development setting.
      fetch: {
        allowedHosts: config.clientMetadataAllowedHosts,
        allowHttpLoopback: config.dangerouslyAllowHttpLoopbackClientMetadata,
      },
    }),
    metadataHosts: createMetadataHosts({ store, clock, audit }),
    delegationRules: createDelegationRules({ store, clock, audit }),
    trustedIssuers: createTrustedIssuers({ store, clock, audit }),
    // An operator chose these URLs, so the client-metadata host allow-list does not apply; the
    // SSRF guard (public addresses, https) and the refetch interval do, since any caller can
    // send an assertion naming a trusted issuer and a made-up kid.
    issuerJwks: createClientJwks({
      clock,
      fetch: { allowHttpLoopback: config.dangerouslyAllowHttpLoopbackClientMetadata },
    }),
    grants,
    policies,
    relationships,
    policy,
    authorizationCodes: createAuthorizationCodes({ store, clock }),
    providerFlows: createProviderFlows({ db: store.db, clock, sealer }),
    approvals,
    detailTypes: createDetailTypes({ store, clock, audit }),
    notifier,
    notificationChannels: channels,
    providers,
    vault: createVault({ store, clock, sealer, audit, logger, providers, config }),
    refreshTokens: createRefreshTokens({
      store,
      clock,
      ttlSeconds: config.refreshTokenTtlSeconds,
      familyMaxLifetimeSeconds: config.refreshTokenFamilyMaxLifetimeSeconds,
      graceSeconds: config.refreshTokenReuseGraceSeconds,
    }),
    signingKeys: createSigningKeys({
      store,
      sealer,
      clock,
      audit,
      alg: config.signingAlg,
      maxTokenLifetimeSeconds: config.accessTokenTtlSeconds,
    }),
  }
  return {
    deps,
    masterKey,
    close: async () => {
      // The refusals counted in the current window are written before the database closes.
      await refusals.close()
      await notifier.close()
      await notifier.idle()
      policy.close()
      await rateLimits.close()
      await store.close()
    },
  }
}

/**
 * What production refuses to serve: an issuer that is not https. Sign-in sessions and CSRF
 * secrets live in `__Host-` Secure cookies, which browsers keep only over https, and tokens,
 * codes and redirects would travel in the clear.
 */
export function assertServable(config: ResolvedConfig): void {
  if (config.mode === 'production' && !config.issuer.startsWith('https://')) {
    throw new DeputyError(
      'ERR_CONFIG_INVALID',
      `in production the issuer must be an https URL (it is ${config.issuer}): set --issuer or DEPUTY_ISSUER to https://… (terminate TLS in front of Deputy if you like)`,
    )
  }
}

/**
 * Runs `work` every `intervalSeconds` (0: never), starting at a random point of the first
 * interval so replicas started together do not run it at once. A failed run is logged and tried
 * again next time; `stop` waits for one in progress.
 */
function schedulePeriodic(
  deps: Pick<DeputyDeps, 'logger'>,
  intervalSeconds: number,
  what: string,
  work: () => Promise<unknown>,
): { stop(): Promise<void> } {
  const intervalMs = intervalSeconds * 1000
  if (intervalMs === 0) return { stop: async () => {} }
  let running: Promise<void> | undefined
  let timer: NodeJS.Timeout
  const run = () => {
    running = work()
      .then((report) => deps.logger.debug({ report }, what))
      .catch((err: unknown) => deps.logger.warn({ err }, `${what} failed`))
      .finally(() => {
        running = undefined
      })
    timer = setTimeout(run, intervalMs)
    timer.unref()
  }
  timer = setTimeout(run, Math.floor(Math.random() * intervalMs))
  timer.unref()
  return {
    async stop() {
      clearTimeout(timer)
      await running
    },
  }
}

/** A running Deputy: the Hono app (serve it with any Web-standard host) and how to stop it. */
export interface Deputy {
  app: Hono<AppEnv>
  deps: DeputyDeps
  masterKey: MasterKeySource
  /**
   * Ends the open event streams (the approvals inbox's server-sent events), so a draining server
   * need not wait for them; browsers reconnect to another replica. Called when draining begins.
   */
  endStreams(): void
  close(): Promise<void>
}

/**
 * Builds Deputy from its settings: opens the database (running migrations), loads the master key
 * and signing keys, and assembles the HTTP app. Domain handlers take Web Requests and return
 * Responses; only server.ts knows about Node's HTTP server.
 */
export async function createDeputy(
  config: ResolvedConfig,
  options: CreateDeputyOptions = {},
): Promise<Deputy> {
  assertServable(config)
  const opened = await openDeputy(config, options)
  const { deps } = opened
  // Make sure a signing key exists before the first request needs one.
  await deps.signingKeys.active()

  const app = new Hono<AppEnv>()
  app.use(deps.metrics.middleware)
  app.use(requestContext(deps.logger))
  app.use(securityHeaders({ https: config.issuer.startsWith('https:') }))
  app.use(clientAddressMiddleware(trustedProxies(config.trustedProxies)))
  app.use(refuseNulInPath())
  // Nothing Deputy accepts is large; refuse big bodies before reading them.
  app.use(
    bodyLimit({
      maxSize: 64 * 1024,
      onError: (c) =>
        c.json({ error: 'request_too_large', message: 'request body is larger than 64 KiB' }, 413),
    }),
  )
  app.onError(errorResponse)
  app.notFound(notFoundResponse)

  // A person opening the bare URL lands on their account (or the sign-in page).
  app.get('/', (c) => c.redirect('/account', 303))
  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    try {
      await deps.db.selectFrom('signing_keys').select('kid').limit(1).execute()
      return c.json({ status: 'ready' })
    } catch {
      return c.json({ status: 'unavailable', message: 'database is not reachable' }, 503)
    }
  })
  app.route('/', jwksRoutes(deps))
  app.route('/', createProviderSignInRoutes(deps))
  app.route(
    '/',
    createIdentityRoutes({ ...deps, signInProviders: () => signInProviders(deps.providers) }),
  )
  app.route('/', createPasskeyRoutes(deps))
  // One gate for the whole admin API; each part mounts its routes behind it.
  const adminGate = requireAdmin(deps.adminApiKeys, (request) => readSession(deps, request))
  // Prometheus scrapes with an admin API key as its bearer token (or `metricsPort`, unprotected
  // on its own address, for a scraper beside Deputy).
  app.get('/metrics', adminGate, async () => metricsResponse(deps.metrics))
  app.route(
    '/admin/api',
    createAdminApi({
      ...deps,
      adminGate,
      describedElsewhere: [
        ...POLICY_ADMIN_ROUTES,
        ...APPROVAL_ADMIN_ROUTES,
        ...PROVIDER_ADMIN_ROUTES,
        ...TRUSTED_ISSUER_ADMIN_ROUTES,
      ],
    }),
  )
  app.route('/admin/api', createOAuthAdminApi({ ...deps, adminGate }))
  app.route('/admin/api', createPolicyAdminApi({ ...deps, adminGate }))
  app.route('/admin/api', createApprovalAdminApi({ ...deps, adminGate }))
  app.route('/admin/api', createProviderAdminApi({ ...deps, adminGate }))
  // The operator console's pages (/admin, /admin/people …), over the same domain services.
  app.route('/', createConsoleRoutes(deps))
  app.route('/admin/api', createTrustedIssuerAdminApi({ ...deps, adminGate }))
  // The authorization server, one module per endpoint.
  app.route('/', createMetadataRoutes(deps))
  app.route('/', createRegistrationRoutes(deps))
  app.route('/', createAuthorizeRoutes(deps))
  app.route('/', createAgentsRoutes(deps))
  app.route('/', createTokenRoutes(deps))
  app.route('/', createBackchannelRoutes(deps))
  // The person's side of backchannel authentication: the approvals inbox and its pages.
  const streams = new AbortController()
  app.route('/', createInboxRoutes({ ...deps, scopeSentence, streamsEnd: streams.signal }))
  app.route('/', createPreferencesRoutes({ ...deps, channels: deps.notificationChannels }))
  app.route('/', createRevocationRoutes(deps))
  app.route('/', createIntrospectionRoutes(deps))
  app.route('/', createUserinfoRoutes(deps))
  // Connected accounts: the person's page, connect links and the providers' callbacks.
  app.route('/', createVaultRoutes(deps))

  const sweeper = schedulePeriodic(deps, config.sweepIntervalSeconds, 'swept expired rows', () =>
    sweepExpiredRows(deps),
  )
  // The checkpoint is also logged, so shipped logs keep a copy outside the database.
  const checkpointer = schedulePeriodic(
    deps,
    config.auditCheckpointIntervalSeconds,
    'audit checkpoint',
    async () => {
      const checkpoint = await writeCheckpoint({ ...deps, issuer: config.issuer })
      if (checkpoint) deps.logger.info({ auditCheckpoint: checkpoint }, 'audit chain checkpointed')
    },
  )
  return {
    app,
    deps,
    masterKey: opened.masterKey,
    endStreams: () => streams.abort(),
    close: async () => {
      streams.abort()
      await sweeper.stop()
      await checkpointer.stop()
      await opened.close()
    },
  }
}

/** The metrics in Prometheus' text format, never cached. */
export async function metricsResponse(metrics: Metrics): Promise<Response> {
  const { contentType, body } = await metrics.render()
  return new Response(body, {
    status: 200,
    headers: { 'Content-Type': contentType, 'Cache-Control': 'no-store' },
  })
}
