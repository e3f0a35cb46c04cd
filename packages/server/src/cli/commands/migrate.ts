import type { Command } from 'commander'
import { openStore } from '../../store/db.js'
import { migrateToLatest } from '../../store/migrate.js'
import { commandConfig, globalOptions, output } from '../context.js'

/** `deputy migrate`: applies pending migrations and says which. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async (_opts, command: Command) => {
      const options = globalOptions(command)
      const config = commandConfig(options)
      const store = openStore(config.database)
      try {
        const { applied } = await migrateToLatest(store)
        output(options, { database: store.location, applied }, () =>
          applied.length === 0
            ? `database ${store.location} is up to date`
            : `applied ${applied.length} migration(s) to ${store.location}: ${applied.join(', ')}`,
        )
      } finally {
        await store.close()
      }
    })
}
