import { z } from 'zod'

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
      .describe('Failed sign-ins (per account and per client address) before a temporary lockout.'),
    loginLockoutSeconds: z.coerce
      .number()
      .int()
      .min(1)
      .default(900)
      .describe('Window in which failed sign-ins are counted, and the length of the lockout.'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Log level of the JSON logs on stdout.'),
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
