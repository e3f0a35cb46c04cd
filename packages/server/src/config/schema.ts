import { z } from 'zod'

/**
 * Every setting Deputy has, with its default and why. Config files are checked against this
 * schema strictly: an unknown key is a mistake worth naming, not something to ignore.
 */
export const ConfigSchema = z
  .object({
    /** `production` refuses unsafe defaults: a generated master key, development settings. */
    mode: z.enum(['development', 'production']).default('development'),
    /** TCP port for HTTP. */
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    /** Interface to listen on; loopback by default so a first start exposes nothing. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Public URL of this Deputy; default `http://localhost:<port>`. */
    issuer: z.url({ protocol: /^https?$/ }).optional(),
    /** Where the embedded default keeps its SQLite file and generated master key. */
    dataDir: z.string().min(1).default('.deputy'),
    /** A SQLite file path or a `postgres://` URL; default `<dataDir>/deputy.db`. */
    database: z.string().min(1).optional(),
    /** Base64url-encoded 32-byte master key. Prefer `masterKeyFile` or the environment. */
    masterKey: z.string().min(1).optional(),
    /** File holding the master key; default `<dataDir>/master.key`, generated in development. */
    masterKeyFile: z.string().min(1).optional(),
    /** Algorithm of new signing keys. */
    signingAlg: z.enum(['ES256', 'EdDSA']).default('ES256'),
    /** Lifetime of access tokens; retired signing keys stay published at least this long. */
    accessTokenTtlSeconds: z.coerce.number().int().min(30).max(86_400).default(600),
    /** Lifetime of a signed-in browser session. */
    sessionTtlSeconds: z.coerce
      .number()
      .int()
      .min(60)
      .default(8 * 3600),
    /** Failed sign-ins (per account and per client address) before a temporary lockout. */
    loginMaxFailures: z.coerce.number().int().min(1).default(5),
    /** Window in which failed sign-ins are counted, and the length of the lockout. */
    loginLockoutSeconds: z.coerce.number().int().min(1).default(900),
    /** pino log level. */
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
  })
  .strict()

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
  DEPUTY_MASTER_KEY_FILE: 'masterKeyFile',
  DEPUTY_SIGNING_ALG: 'signingAlg',
  DEPUTY_LOG_LEVEL: 'logLevel',
}
