import type { Command } from 'commander'
import { adminApiKeyToWire } from '../../admin/wire.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor } from './users.js'

/** `deputy admin-keys …`: create, list, revoke keys for the admin API. */
export function registerAdminKeys(program: Command): void {
  const keys = program
    .command('admin-keys')
    .description('manage keys for the admin HTTP API (/admin/api)')

  keys
    .command('create')
    .description('create a key; it is printed once and cannot be shown again')
    .requiredOption('--name <name>', 'what the key is for, e.g. ci')
    .action(async (opts: { name: string }, command: Command) => {
      const options = globalOptions(command)
      const created = await withDeputy(options, (deps) =>
        deps.adminApiKeys.create(opts.name, cliActor()),
      )
      if (!options.json)
        process.stderr.write(
          `admin API key "${created.name}" created (id ${created.id}); it is shown only this once\n`,
        )
      // Only the key on stdout, so `KEY=$(deputy admin-keys create --name ci)` works.
      output(options, { ...adminApiKeyToWire(created), key: created.key }, () => created.key)
    })

  keys
    .command('list')
    .description('list keys (never the keys themselves)')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = (await withDeputy(options, (deps) => deps.adminApiKeys.list())).map(
        adminApiKeyToWire,
      )
      output(options, list, () =>
        table(list, ['id', 'name', 'created_at', 'last_used_at', 'revoked_at']),
      )
    })

  keys
    .command('revoke <id>')
    .description('revoke a key; it stops working at once')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const revoked = await withDeputy(options, (deps) => deps.adminApiKeys.revoke(id, cliActor()))
      output(
        options,
        adminApiKeyToWire(revoked),
        () => `revoked admin API key ${revoked.name} (${id})`,
      )
    })
}
