import pino from 'pino'
import { type ResolvedConfig, resolveConfig } from '../../src/config/load.js'
import { type ConfigInput, ConfigSchema } from '../../src/config/schema.js'
import { type CreateDeputyOptions, createDeputy, type Deputy } from '../../src/deputy.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { createSqliteDatabase, type TestDatabase } from './databases.js'

/** Settings for a test Deputy: a fresh database unless one is given, a fresh master key, quiet logs. */
export function testConfig(database: string, overrides: ConfigInput = {}): ResolvedConfig {
  return resolveConfig(
    ConfigSchema.parse({
      masterKey: generateMasterKey(),
      database,
      logLevel: 'silent',
      port: 0,
      issuer: 'http://localhost:8080',
      ...overrides,
    }),
  )
}

export interface TestDeputy extends Deputy {
  database: TestDatabase
  config: ResolvedConfig
  dispose(): Promise<void>
}

/** Starts an in-process Deputy (no socket) on a fresh SQLite file, or on `database` if given. */
export async function startTestDeputy(
  options: { database?: TestDatabase; config?: ConfigInput } & CreateDeputyOptions = {},
): Promise<TestDeputy> {
  const database = options.database ?? (await createSqliteDatabase())
  const config = testConfig(database.url, options.config)
  const deputy = await createDeputy(config, { logger: pino({ level: 'silent' }), ...options })
  return {
    ...deputy,
    database,
    config,
    async dispose() {
      await deputy.close()
      await database.dispose()
    },
  }
}
