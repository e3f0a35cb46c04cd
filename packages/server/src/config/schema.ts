import { isIP } from 'node:net'
import { z } from 'zod'

/** A yes/no setting: a JSON boolean, or `true`/`false` from the environment or a flag. */
const Flag = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
])

/** Host names: a JSON array, or a comma-separated string from the environment. */
const HostList = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((h) => h.trim())
          .filter(Boolean)
      : value,
  z.array(
    z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, 'must list host names (no scheme, port or path)')
      .transform((h) => h.toLowerCase()),
  ),
)

/** An IPv4 or IPv6 address, or one with a `/prefix` (CIDR). */
function isAddressOrRange(entry: string): boolean {
  const [address = '', prefix, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (prefix === undefined) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

/** Addresses and CIDR ranges: a JSON array, or a comma-separated string from the environment. */
const AddressList = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((h) => h.trim())
          .filter(Boolean)
      : value,
  z.array(
    z.string().refine(isAddressOrRange, 'must list IP addresses or CIDR ranges (10.0.0.0/8, ::1)'),
  ),
)

/**
 * Every setting Deputy has, with its default and what it is for; docs/configuration.md is
 * generated from these descriptions (`npm run docs`). Config files are checked strictly: an
 * unknown key is a mistake worth naming, not something to ignore.
 */
export const ConfigSchema = z
  .object({
    mode: z
      .enum(['development', 'production'])
      .default('development')
      .describe(
        '`production` refuses unsafe defaults: a generated master key, development settings.',
      ),
    port: z.coerce.number().int().min(0).max(65535).default(8080).describe('TCP port for HTTP.'),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('Interface to listen on; loopback by default so a first start exposes nothing.'),
    metricsPort: z.coerce
      .number()
      .int()
      .min(0)
      .max(65535)
      .optional()
      .describe(
        'Also serve `/metrics` (Prometheus) without credentials on this port of `metricsHost`, for a scraper beside Deputy; unset: only `/metrics` on the main port, with an admin API key as bearer token.',
      ),
    metricsHost: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('Interface the unprotected `/metrics` of `metricsPort` listens on.'),
    issuer: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('Public URL of this Deputy; default `http://localhost:<port>`.'),
    dataDir: z
      .string()
      .min(1)
      .default('.deputy')
      .describe('Where the embedded default keeps its SQLite file and generated master key.'),
    database: z
      .string()
      .min(1)
      .optional()
      .describe('A SQLite file path or a `postgres://` URL; default `<dataDir>/deputy.db`.'),
    masterKey: z
      .string()
      .min(1)
      .optional()
      .describe('Base64url-encoded 32-byte master key. Prefer `masterKeyFile` or the environment.'),
    masterKeyPrevious: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Previous master keys, comma-separated, beside `masterKey` during `deputy keys rotate-master`: they open records, never seal.',
      ),
    masterKeyFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'File holding the master key; default `<dataDir>/master.key`, generated in development.',
      ),
    signingAlg: z
      .enum(['ES256', 'EdDSA'])
      .default('ES256')
      .describe('Algorithm of new signing keys.'),
    accessTokenTtlSeconds: z.coerce
      .number()
      .int()
      .min(30)
      .max(86_400)
      .default(600)
      .describe(
        'Lifetime of access tokens; retired signing keys stay published at least this long.',
      ),
    refreshTokenTtlSeconds: z.coerce
      .number()
      .int()
      .min(60)
      .default(30 * 86_400)
      .describe(
        'How long a refresh token stays usable if it is not used; each use rotates it and issues a successor with a fresh lifetime.',
      ),
    refreshTokenFamilyMaxLifetimeSeconds: z.coerce
      .number()
      .int()
      .min(60)
      .default(90 * 86_400)
      .describe(
        'The longest a grant can be kept alive by refreshing, counted from the authorization that started it (RFC 9700 §4.14.2): no refresh token of the grant is valid past it, however recently it was rotated, and the person signs in again.',
      ),
    refreshTokenReuseGraceSeconds: z.coerce
      .number()
      .int()
      .min(0)
      .max(300)
      .default(10)
      .describe(
        'After a refresh token is rotated, a confidential client presenting it again within this time (a lost response) gets a fresh successor, and the successor it supersedes ends the grant if it is ever used; public clients get no grace. After it, reuse revokes the whole grant.',
      ),
    delegationMaxDepth: z.coerce
      .number()
      .int()
      .min(1)
      .max(10)
      .default(3)
      .describe(
        'The most actors a delegated token (RFC 8693 token exchange, docs/delegation.md) may name in its `act` chain; an exchange that would make it longer is refused with `invalid_request`.',
      ),
    vaultRefreshAheadSeconds: z.coerce
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(60)
      .describe(
        "The vault refreshes a connected account's upstream access token when it would expire within this many seconds, so a token handed out is still good for at least that long.",
      ),
    sessionTtlSeconds: z.coerce
      .number()
      .int()
      .min(60)
      .default(8 * 3600)
      .describe('Lifetime of a signed-in browser session.'),
    loginMaxFailures: z.coerce
      .number()
      .int()
      .min(1)
      .default(5)
      .describe(
        'Failed sign-ins for one account from one client address before each further attempt from there must wait: 1 s, then twice as long after each failure, up to `loginLockoutSeconds`. Other addresses are not held back, so nobody can lock the real person out.',
      ),
    loginLockoutSeconds: z.coerce
      .number()
      .int()
      .min(1)
      .default(900)
      .describe(
        'The longest wait between throttled sign-in attempts; failures are forgotten once this long has passed after the last wait ended.',
      ),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Log level of the JSON logs on stdout.'),
    dynamicRegistration: Flag.default(true)
      .describe(
        'Accept RFC 7591 dynamic client registration at `/register` (default `true`); when off it answers 404 and discovery omits `registration_endpoint`.',
      )
      .meta({ type: 'boolean' }),
    dynamicRegistrationTtlSeconds: z.coerce
      .number()
      .int()
      .min(60)
      .optional()
      .describe('Lifetime of a dynamically registered client; default: no expiry.'),
    clientMetadataAllowedHosts: HostList.default([]).describe(
      'Hosts whose Client ID Metadata Documents may be fetched (comma-separated in the environment); empty (the default) means any public host.',
    ),
    policyRefreshIntervalMs: z.coerce
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(1000)
      .describe(
        'How often each process checks the database for a new policy-set version; a policy written by any replica is in force everywhere within this time.',
      ),
    cacheCheckIntervalMs: z.coerce
      .number()
      .int()
      .min(50)
      .max(1000)
      .default(250)
      .describe(
        'How often each process reads the change counters of what it caches (clients, resources, the signing key, the policy set). On PostgreSQL a change reaches every replica at once (LISTEN/NOTIFY) and this bounds it when a notification is lost; processes sharing one SQLite file hear of each other only this way. docs/replicas.md.',
      ),
    shutdownGraceSeconds: z.coerce
      .number()
      .int()
      .min(0)
      .max(600)
      .default(10)
      .describe(
        'On SIGTERM or SIGINT, how long `deputy start` lets in-flight requests finish before cutting their connections and exiting; new connections are refused at once.',
      ),
    auditCheckpointIntervalSeconds: z.coerce
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(3600)
      .describe(
        "How often each process signs a checkpoint of the audit chain's head (0: never), so `deputy audit verify` can tell records cut off its end; each is also logged.",
      ),
    sweepIntervalSeconds: z.coerce
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(600)
      .describe(
        'How often a serving process deletes rows that can no longer be used (expired codes, refresh tokens, sessions, throttle counters, lapsed dynamic clients, …); `0` turns it off (`deputy sweep` runs it once).',
      ),
    backchannelDefaultExpirySeconds: z.coerce
      .number()
      .int()
      .min(30)
      .max(86_400)
      .default(300)
      .describe(
        'How long a backchannel authentication (CIBA) request waits for the person when the client sends no `requested_expiry`.',
      ),
    backchannelMaxExpirySeconds: z.coerce
      .number()
      .int()
      .min(30)
      .max(7 * 86_400)
      .default(3600)
      .describe('The longest `requested_expiry` a CIBA request may ask for.'),
    backchannelPollIntervalSeconds: z.coerce
      .number()
      .int()
      .min(1)
      .max(60)
      .default(5)
      .describe(
        'The `interval` CIBA clients are told to poll at; polling faster answers `slow_down` and adds 5 s.',
      ),
    backchannelMaxPendingPerClientAndPerson: z.coerce
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe('Undecided CIBA requests one client may have open for one person at a time.'),
    approvalRetentionDays: z.coerce
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(30)
      .describe(
        'How long approval (CIBA) requests are kept after they expire, decided or not, for the inbox history and `deputy approvals`; the sweep then deletes them (their audit records stay).',
      ),
    approvalFreshSignInMinutes: z.coerce
      .number()
      .int()
      .min(1)
      .max(1440)
      .default(5)
      .describe(
        'Approving a request with a high-risk detail type needs the password entered (or a passkey used) within this many minutes.',
      ),
    smtpUrl: z
      .url({ protocol: /^smtps?$/ })
      .optional()
      .describe(
        'The SMTP server approval emails go through: `smtps://user:password@host:465` (TLS from the start) or `smtp://host:587` (STARTTLS, required in `production` mode). Unset: people cannot choose email on their notifications page.',
      ),
    smtpFrom: z
      .string()
      .min(3)
      .max(320)
      .optional()
      .describe(
        'The sender of approval emails, e.g. `Deputy <deputy@example.com>`; default `deputy@<issuer host>`.',
      ),
    dangerouslyAllowHttpLoopbackNotifications: Flag.default(false)
      .describe(
        'Development only, default `false`: send CIBA pings and webhooks over plain http to loopback addresses. Refused in `production` mode.',
      )
      .meta({ type: 'boolean' }),
    dangerouslyAllowHttpLoopbackClientMetadata: Flag.default(false)
      .describe(
        'Development only, default `false`: fetch Client ID Metadata Documents over plain http from loopback addresses. Refused in `production` mode.',
      )
      .meta({ type: 'boolean' }),
    dangerouslyAllowHttpLoopbackProviders: Flag.default(false)
      .describe(
        'Development only, default `false`: let upstream providers (sign-in and connected accounts) live on loopback addresses over plain http, as a test provider does. Refused in `production` mode.',
      )
      .meta({ type: 'boolean' }),

    // Abuse by anonymous callers (issue 9 §6, §8): client addresses, throttles and rate limits.
    trustedProxies: AddressList.default([]).describe(
      "Reverse proxies (IP addresses or CIDR ranges, comma-separated in the environment) whose `X-Forwarded-For` is believed: the client address is then the right-most entry that is not itself a trusted proxy. Empty (the default): the socket address, headers ignored. Set it behind a proxy, or every client shares the proxy's address in sign-in throttling and rate limits.",
    ),
    loginMaxFailuresPerAddress: z.coerce
      .number()
      .int()
      .min(1)
      .default(50)
      .describe(
        'Failed sign-ins from one client address, across all accounts, before each further attempt from there must wait (the same back-off as `loginMaxFailures`).',
      ),
    registrationRateLimit: z.coerce
      .number()
      .int()
      .min(1)
      .default(30)
      .describe(
        'Dynamic registration requests (`POST /register`) one client address may make per hour; past it the answer is 429 with `Retry-After`. Shared by the replicas (see `redisUrl`).',
      ),
    tokenRateLimitPerClient: z.coerce
      .number()
      .int()
      .min(0)
      .default(600)
      .describe(
        'Token requests (`POST /token`) one authenticated client may make per minute, in bursts of up to as many; past it 429 with `Retry-After`. Shared by the replicas (see `redisUrl`); 0 turns it off.',
      ),
    tokenRateLimitPerAddress: z.coerce
      .number()
      .int()
      .min(0)
      .default(1200)
      .describe(
        'Token requests one client address (an IPv6 /64) may make per minute, counted before the client is authenticated; 0 turns it off. Behind a proxy set `trustedProxies`, or every client shares its address.',
      ),
    backchannelRateLimitPerClient: z.coerce
      .number()
      .int()
      .min(0)
      .default(60)
      .describe(
        'Backchannel authentication requests (`POST /bc-authorize`) one authenticated client may make per minute; 0 turns it off.',
      ),
    backchannelRateLimitPerAddress: z.coerce
      .number()
      .int()
      .min(0)
      .default(120)
      .describe(
        'Backchannel authentication requests one client address may make per minute, counted before the client is authenticated; 0 turns it off.',
      ),
    signInRateLimit: z.coerce
      .number()
      .int()
      .min(0)
      .default(60)
      .describe(
        'Sign-in attempts (`POST /login`, and starting a sign-in with a provider at `/login/<provider>`, which stores a redirect for 10 minutes) one client address may make per minute, besides the per-account throttle of `loginMaxFailures`; 0 turns it off.',
      ),
    connectRateLimit: z.coerce
      .number()
      .int()
      .min(0)
      .default(60)
      .describe(
        'Connections to a provider (`POST /connect/<provider>`, each storing a redirect for 10 minutes) one signed-in person may start per hour; 0 turns it off.',
      ),
    redisUrl: z
      .url({ protocol: /^rediss?$/ })
      .optional()
      .describe(
        'A Redis (`redis://host:6379`, `rediss://…` for TLS) where the rate limits of all replicas are counted. Unset: on PostgreSQL they are counted in the database (table `rate_limit_buckets`), on SQLite in the process.',
      ),
    clientMetadataFetchRateLimit: z.coerce
      .number()
      .int()
      .min(1)
      .default(30)
      .describe(
        "Client ID Metadata Document fetches the requests of one client address may cause per minute; past it `/authorize` and `/token` answer 429 with `Retry-After`. Counted in each process's memory, so N replicas let N times as many through.",
      ),
    authorizationRequestRateLimit: z.coerce
      .number()
      .int()
      .min(1)
      .default(60)
      .describe(
        "Sign-in hand-offs (`/authorize` requests from a browser that is not signed in, each stored for 10 minutes) one client address may start per minute; past it a 429 page with `Retry-After`. Counted in each process's memory, so N replicas let N times as many through.",
      ),
    auditRefusalSummarySeconds: z.coerce
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(60)
      .describe(
        'Refusals of anonymous requests are recorded in full once per this window for each kind (event type, reason, actor, target); the rest of the window is counted and written as one summary record (see docs/events.md).',
      ),
  })
  .strict()
  .superRefine((config, ctx) => {
    // The SSRF guard of client metadata fetches must not be loosened on a real deployment.
    if (config.mode === 'production' && config.dangerouslyAllowHttpLoopbackNotifications) {
      ctx.addIssue({
        code: 'custom',
        path: ['dangerouslyAllowHttpLoopbackNotifications'],
        message: 'is a development setting and is refused in production mode',
      })
    }
    if (config.mode === 'production' && config.dangerouslyAllowHttpLoopbackClientMetadata) {
      ctx.addIssue({
        code: 'custom',
        path: ['dangerouslyAllowHttpLoopbackClientMetadata'],
        message: 'is a development setting and is refused in production mode',
      })
    }
    if (config.mode === 'production' && config.dangerouslyAllowHttpLoopbackProviders) {
      ctx.addIssue({
        code: 'custom',
        path: ['dangerouslyAllowHttpLoopbackProviders'],
        message: 'is a development setting and is refused in production mode',
      })
    }
  })

export type Config = z.output<typeof ConfigSchema>
export type ConfigInput = z.input<typeof ConfigSchema>

/** Environment variables that map onto settings. `PORT` is the usual platform convention. */
export const ENVIRONMENT_VARIABLES: Record<string, keyof ConfigInput> = {
  DEPUTY_MODE: 'mode',
  PORT: 'port',
  DEPUTY_PORT: 'port',
  DEPUTY_HOST: 'host',
  DEPUTY_ISSUER: 'issuer',
  DEPUTY_DATA_DIR: 'dataDir',
  DEPUTY_DATABASE_URL: 'database',
  DEPUTY_MASTER_KEY: 'masterKey',
  DEPUTY_METRICS_PORT: 'metricsPort',
  DEPUTY_METRICS_HOST: 'metricsHost',
  DEPUTY_MASTER_KEY_PREVIOUS: 'masterKeyPrevious',
  DEPUTY_MASTER_KEY_FILE: 'masterKeyFile',
  DEPUTY_SIGNING_ALG: 'signingAlg',
  DEPUTY_REFRESH_TOKEN_FAMILY_MAX_LIFETIME_SECONDS: 'refreshTokenFamilyMaxLifetimeSeconds',
  DEPUTY_POLICY_REFRESH_INTERVAL_MS: 'policyRefreshIntervalMs',
  DEPUTY_CACHE_CHECK_INTERVAL_MS: 'cacheCheckIntervalMs',
  DEPUTY_SHUTDOWN_GRACE_SECONDS: 'shutdownGraceSeconds',
  DEPUTY_LOG_LEVEL: 'logLevel',
  DEPUTY_VAULT_REFRESH_AHEAD_SECONDS: 'vaultRefreshAheadSeconds',
  DEPUTY_DYNAMIC_REGISTRATION: 'dynamicRegistration',
  DEPUTY_DYNAMIC_REGISTRATION_TTL_SECONDS: 'dynamicRegistrationTtlSeconds',
  DEPUTY_CLIENT_METADATA_ALLOWED_HOSTS: 'clientMetadataAllowedHosts',
  DEPUTY_SWEEP_INTERVAL_SECONDS: 'sweepIntervalSeconds',
  DEPUTY_AUDIT_CHECKPOINT_INTERVAL_SECONDS: 'auditCheckpointIntervalSeconds',
  DEPUTY_BACKCHANNEL_DEFAULT_EXPIRY_SECONDS: 'backchannelDefaultExpirySeconds',
  DEPUTY_BACKCHANNEL_MAX_EXPIRY_SECONDS: 'backchannelMaxExpirySeconds',
  DEPUTY_BACKCHANNEL_POLL_INTERVAL_SECONDS: 'backchannelPollIntervalSeconds',
  DEPUTY_BACKCHANNEL_MAX_PENDING: 'backchannelMaxPendingPerClientAndPerson',
  DEPUTY_APPROVAL_FRESH_SIGN_IN_MINUTES: 'approvalFreshSignInMinutes',
  DEPUTY_SMTP_URL: 'smtpUrl',
  DEPUTY_SMTP_FROM: 'smtpFrom',
  DEPUTY_APPROVAL_RETENTION_DAYS: 'approvalRetentionDays',
  DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_NOTIFICATIONS: 'dangerouslyAllowHttpLoopbackNotifications',
  DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_CLIENT_METADATA:
    'dangerouslyAllowHttpLoopbackClientMetadata',
  DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_PROVIDERS: 'dangerouslyAllowHttpLoopbackProviders',
  DEPUTY_TRUSTED_PROXIES: 'trustedProxies',
  DEPUTY_LOGIN_MAX_FAILURES_PER_ADDRESS: 'loginMaxFailuresPerAddress',
  DEPUTY_REGISTRATION_RATE_LIMIT: 'registrationRateLimit',
  DEPUTY_TOKEN_RATE_LIMIT_PER_CLIENT: 'tokenRateLimitPerClient',
  DEPUTY_TOKEN_RATE_LIMIT_PER_ADDRESS: 'tokenRateLimitPerAddress',
  DEPUTY_BACKCHANNEL_RATE_LIMIT_PER_CLIENT: 'backchannelRateLimitPerClient',
  DEPUTY_BACKCHANNEL_RATE_LIMIT_PER_ADDRESS: 'backchannelRateLimitPerAddress',
  DEPUTY_SIGN_IN_RATE_LIMIT: 'signInRateLimit',
  DEPUTY_CONNECT_RATE_LIMIT: 'connectRateLimit',
  DEPUTY_REDIS_URL: 'redisUrl',
  DEPUTY_CLIENT_METADATA_FETCH_RATE_LIMIT: 'clientMetadataFetchRateLimit',
  DEPUTY_AUTHORIZATION_REQUEST_RATE_LIMIT: 'authorizationRequestRateLimit',
  DEPUTY_AUDIT_REFUSAL_SUMMARY_SECONDS: 'auditRefusalSummarySeconds',
}
