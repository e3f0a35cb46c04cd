import type { Command } from 'commander'
import { sweepExpiredRows } from '../../maintenance/sweep.js'
import { openStore } from '../../store/db.js'
import { migrateToLatest } from '../../store/migrate.js'
import { commandConfig, globalOptions, output, withDeputy } from '../context.js'

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

/** `deputy sweep`: deletes, once, the rows that can no longer be used, and says how many. */
export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description(
      'delete expired codes, tokens, sessions and lapsed clients now (a server does it every sweepIntervalSeconds)',
    )
    .action(async (_opts, command: Command) => {
      const options = globalOptions(command)
      const report = await withDeputy(options, (deps) => sweepExpiredRows(deps))
      output(options, report, () =>
        Object.entries(report)
          .map(([kind, count]) => `${kind}: ${count}`)
          .join('\n'),
      )
    })
}
