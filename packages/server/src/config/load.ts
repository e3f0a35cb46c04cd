import { readFileSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { DeputyError } from '../lib/errors.js'
import { type Config, type ConfigInput, ConfigSchema, ENVIRONMENT_VARIABLES } from './schema.js'

/** Settings after defaults are applied and paths resolved. */
export interface ResolvedConfig extends Config {
  issuer: string
  database: string
  masterKeyFile: string
}

export interface LoadConfigOptions {
  /** A JSON config file (`--config`). */
  file?: string
  /** Settings from command-line flags; they win over the environment and the file. */
  overrides?: ConfigInput
  env?: Record<string, string | undefined>
  cwd?: string
}

/**
 * Loads settings: defaults < config file < environment < flags. Throws a DeputyError whose
 * message names the file or the setting at fault.
 */
export function loadConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const cwd = options.cwd ?? process.cwd()
  const env = options.env ?? process.env
  const fromFile = options.file ? readConfigFile(resolve(cwd, options.file)) : {}
  const fromEnv: Record<string, string> = {}
  for (const [name, key] of Object.entries(ENVIRONMENT_VARIABLES)) {
    const value = env[name]
    if (value !== undefined && value !== '') fromEnv[key] = value
  }
  if (env.NODE_ENV === 'production' && fromEnv.mode === undefined) fromEnv.mode = 'production'
  const merged = { ...fromFile, ...fromEnv, ...stripUndefined(options.overrides ?? {}) }
  const parsed = ConfigSchema.safeParse(merged)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue?.path.join('.') || 'config'
    throw new DeputyError('ERR_CONFIG_INVALID', `invalid setting "${where}": ${issue?.message}`)
  }
  return resolveConfig(parsed.data, cwd)
}

/** Applies the defaults that depend on other settings. */
export function resolveConfig(config: Config, cwd = process.cwd()): ResolvedConfig {
  const dataDir = isAbsolute(config.dataDir) ? config.dataDir : resolve(cwd, config.dataDir)
  const database = config.database ?? join(dataDir, 'deputy.db')
  return {
    ...config,
    dataDir,
    issuer: (config.issuer ?? `http://localhost:${config.port}`).replace(/\/$/, ''),
    database:
      isPostgresUrl(database) || isAbsolute(database) || database === ':memory:'
        ? database
        : resolve(cwd, database),
    masterKeyFile: config.masterKeyFile
      ? resolve(cwd, config.masterKeyFile)
      : join(dataDir, 'master.key'),
  }
}

/** True when the database setting names a PostgreSQL server rather than a SQLite file. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//.test(database)
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read it'
    throw new DeputyError('ERR_CONFIG_UNREADABLE', `config file ${path}: ${reason}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new DeputyError(
      'ERR_CONFIG_UNREADABLE',
      `config file ${path} is not valid JSON: ${(err as Error).message}`,
    )
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DeputyError('ERR_CONFIG_UNREADABLE', `config file ${path} must hold a JSON object`)
  }
  return value as Record<string, unknown>
}

function stripUndefined(input: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined))
}
