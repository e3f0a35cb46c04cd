import type { Command } from 'commander'
import { roleToWire } from '../../admin/wire.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor, commaList } from './users.js'

/** `deputy roles …`: add, list, set-permissions. */
export function registerRoles(program: Command): void {
  const roles = program.command('roles').description('manage roles and their permissions')

  roles
    .command('add <name>')
    .description('add a role; permissions that do not exist yet are created')
    .option('--description <text>', 'what the role is for')
    .option(
      '--permission <name>',
      'a permission the role grants (repeat for more)',
      (value: string, previous: string[]) => [...previous, ...commaList(value)],
      [] as string[],
    )
    .action(async (name: string, opts: { description?: string; permission: string[] }, command) => {
      const options = globalOptions(command as Command)
      const role = await withDeputy(options, (deps) =>
        deps.roles.add(
          { name, description: opts.description, permissions: opts.permission },
          cliActor(),
        ),
      )
      output(
        options,
        roleToWire(role),
        () => `added role ${role.name} with permissions ${role.permissions.join(', ') || '(none)'}`,
      )
    })

  roles
    .command('list')
    .description('list roles with their permissions')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.roles.list())
      output(options, list.map(roleToWire), () =>
        table(
          list.map((r) => ({ ...r })),
          ['name', 'permissions', 'description'],
        ),
      )
    })

  roles
    .command('set-permissions <name> <permission...>')
    .description("replace a role's permissions (each must exist)")
    .action(async (name: string, permissions: string[], _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const role = await withDeputy(options, (deps) =>
        deps.roles.setPermissions(name, permissions.flatMap(commaList), cliActor()),
      )
      output(
        options,
        roleToWire(role),
        () => `role ${role.name} grants ${role.permissions.join(', ') || '(nothing)'}`,
      )
    })
}
