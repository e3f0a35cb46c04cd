import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import pino from 'pino'
import { isPostgresUrl, loadConfig, type ResolvedConfig } from '../config/load.js'
import type { ConfigInput } from '../config/schema.js'
import { type DeputyDeps, openDeputy } from '../deputy.js'
import { DeputyError } from '../lib/errors.js'
import { openStore, type Store } from '../store/db.js'
import { migrateToLatest } from '../store/migrate.js'

/** Options every command takes. */
export interface GlobalOptions {
  config?: string
  db?: string
  json?: boolean
}

/** The global options of the command being run, merged from the program and the command. */
export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions
}

/** Settings for a command: the config file, the environment, then `--db` and other flags. */
export function commandConfig(options: GlobalOptions, overrides: ConfigInput = {}): ResolvedConfig {
  return loadConfig({
    file: options.config,
    overrides: { ...overrides, ...(options.db ? { database: options.db } : {}) },
  })
}

/**
 * Refuses a SQLite file that does not exist. Only `deputy migrate`, `start` and `demo` create a
 * database: any other command given a mistyped `--db` would otherwise make an empty database (and
 * a master key) somewhere, then answer from it as if nothing were wrong.
 */
export function requireExistingDatabase(database: string): void {
  if (isPostgresUrl(database) || database === ':memory:' || existsSync(database)) return
  throw new DeputyError(
    'ERR_NOT_FOUND',
    `no database at ${database} (create it with \`deputy migrate --db ${database}\`)`,
  )
}

/** The settings of a command that works on an existing database (see requireExistingDatabase). */
export function existingDatabaseConfig(
  options: GlobalOptions,
  overrides: ConfigInput = {},
): ResolvedConfig {
  const config = commandConfig(options, overrides)
  requireExistingDatabase(config.database)
  return config
}

/**
 * Opens Deputy's storage for one command, runs `work`, and closes it. Commands log nothing to
 * stdout (it is for their output); warnings go to stderr.
 */
export async function withDeputy<T>(
  options: GlobalOptions,
  work: (deps: DeputyDeps) => Promise<T>,
  overrides: ConfigInput = {},
): Promise<T> {
  const config = existingDatabaseConfig(options, overrides)
  const opened = await openDeputy(config, { logger: pino({ level: 'warn' }, pino.destination(2)) })
  try {
    return await work(opened.deps)
  } finally {
    await opened.close()
  }
}

/**
 * Opens only the database, for commands that read what is stored and decrypt nothing (the audit
 * commands): an auditor can verify the chain without being handed the master key.
 */
export async function withStore<T>(
  options: GlobalOptions,
  work: (store: Store) => Promise<T>,
): Promise<T> {
  const store = openStore(existingDatabaseConfig(options).database)
  try {
    await migrateToLatest(store)
    return await work(store)
  } finally {
    await store.close()
  }
}

/** Prints a command's result: JSON with `--json`, otherwise the human text. */
export function output(options: GlobalOptions, json: unknown, human: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(json, null, 2)}\n` : `${human()}\n`)
}

/** Formats rows as an aligned text table. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)'
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c])))
  const widths = columns.map((c, i) =>
    Math.max(c.length, ...cells.map((row) => row[i]?.length ?? 0)),
  )
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n')
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '-'
  if (Array.isArray(value)) return value.join(',') || '-'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Reads all of stdin (for `--password-stdin`), without the trailing newline. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}
