import type { Command } from 'commander'
import { permissionToWire, roleToWire } from '../../admin/wire.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor, commaList } from './users.js'

/** `deputy roles …`: add, list, describe, set-permissions, remove; add and remove permissions. */
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

  roles
    .command('set-description <name> <description>')
    .description("replace a role's description")
    .action(async (name: string, description: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const role = await withDeputy(options, (deps) =>
        deps.roles.setDescription(name, description, cliActor()),
      )
      output(
        options,
        roleToWire(role),
        () => `role ${role.name}: ${role.description || '(no description)'}`,
      )
    })

  roles
    .command('remove <name>')
    .description('delete a role: the people who hold it lose it (not the built-in admin role)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const { holders } = await withDeputy(options, (deps) => deps.roles.remove(name, cliActor()))
      output(
        options,
        { removed: name, holders },
        () => `removed role ${name} (${holders === 1 ? '1 person' : `${holders} people`} held it)`,
      )
    })

  roles
    .command('add-permission <name>')
    .description('add a permission that roles can grant')
    .option('--description <text>', 'what it allows')
    .action(async (name: string, opts: { description?: string }, command: Command) => {
      const options = globalOptions(command)
      const permission = await withDeputy(options, (deps) =>
        deps.roles.addPermission({ name, description: opts.description }, cliActor()),
      )
      output(options, permissionToWire(permission), () => `added permission ${permission.name}`)
    })

  roles
    .command('remove-permission <name>')
    .description('delete a permission no role grants (not deputy:admin)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.roles.removePermission(name, cliActor()))
      output(options, { removed: name }, () => `removed permission ${name}`)
    })
}
