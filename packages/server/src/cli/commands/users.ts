import { userInfo } from 'node:os'
import type { Command } from 'commander'
import { userToWire } from '../../admin/wire.js'
import type { Actor } from '../../audit/types.js'
import { DeputyError } from '../../lib/errors.js'
import { globalOptions, output, readStdin, table, withDeputy } from '../context.js'

/** Who acts when someone runs the CLI: whoever can open the database, named by their OS account. */
export function cliActor(): Actor {
  let account = 'unknown'
  try {
    account = userInfo().username
  } catch {
    // Some containers run as a uid with no passwd entry; the audit event still says it was the CLI.
  }
  return { type: 'system', id: 'cli', label: `deputy CLI (${account})` }
}

/** `a,b , c` → `['a', 'b', 'c']`. */
export function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

const CLAIMS_EXAMPLE = `'{"favorite_song":"Careless Whisper"}'`

/** Parses the claims argument: a JSON object, with one line saying what is wrong otherwise. */
export function parseClaimsArgument(text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `claims are not valid JSON (${(err as Error).message.split('\n')[0]}); expected an object like ${CLAIMS_EXAMPLE}`,
    )
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `claims must be a JSON object, like ${CLAIMS_EXAMPLE}`,
    )
  return value as Record<string, unknown>
}

/** The password for `--password-stdin`: the flag is required so a password never sits in argv. */
async function passwordFromStdin(flag: boolean | undefined): Promise<string> {
  if (!flag)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      'pass --password-stdin and send the password on stdin (never as an argument)',
    )
  return readStdin()
}

/** `deputy users …`: add, list, disable, enable, set-roles, set-claims, set-password. */
export function registerUsers(program: Command): void {
  const users = program.command('users').description('manage people who can sign in')

  users
    .command('add <email>')
    .description('add a person')
    .requiredOption('--name <name>', 'display name')
    .option('--roles <roles>', 'comma-separated roles, e.g. shop-admin,support')
    .option('--password-stdin', 'read a password from stdin so they can sign in with it')
    .action(async (email: string, opts: AddOptions, command: Command) => {
      const options = globalOptions(command)
      const password = opts.passwordStdin ? await readStdin() : undefined
      const user = await withDeputy(options, (deps) =>
        deps.users.create(
          { email, name: opts.name, roles: commaList(opts.roles), password },
          cliActor(),
        ),
      )
      output(options, userToWire(user), () =>
        [
          `added ${user.email} (id ${user.id})`,
          // A password is the only way to sign in: say so now, not at their first failed sign-in.
          ...(password === undefined
            ? [
                `${user.email} cannot sign in until a password is set: deputy users set-password ${user.email} --password-stdin`,
              ]
            : []),
        ].join('\n'),
      )
    })

  users
    .command('list')
    .description('list people with their roles and status')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.users.list())
      output(options, list.map(userToWire), () =>
        table(
          list.map((u) => ({ ...u })),
          ['email', 'name', 'status', 'roles', 'id'],
        ),
      )
    })

  for (const [verb, status] of [
    ['disable', 'disabled'],
    ['enable', 'active'],
  ] as const) {
    users
      .command(`${verb} <email>`)
      .description(
        status === 'disabled'
          ? 'stop a person from signing in and end their sessions'
          : 'let a disabled person sign in again',
      )
      .action(async (email: string, _opts: unknown, command: Command) => {
        const options = globalOptions(command)
        const user = await withDeputy(options, (deps) =>
          deps.users.setStatus(email, status, cliActor()),
        )
        output(options, userToWire(user), () => `${user.email} is now ${user.status}`)
      })
  }

  users
    .command('set-roles <email> <role...>')
    .description("replace a person's roles")
    .action(async (email: string, roles: string[], _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const user = await withDeputy(options, (deps) =>
        deps.users.setRoles(email, roles.flatMap(commaList), cliActor()),
      )
      output(
        options,
        userToWire(user),
        () =>
          `${user.email} has roles ${user.roles.join(', ')}; permissions ${user.permissions.join(', ') || '(none)'}`,
      )
    })

  users
    .command('set-claims <email> <json>')
    .description(`replace a person's custom profile claims, e.g. ${CLAIMS_EXAMPLE}`)
    .action(async (email: string, json: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const claims = parseClaimsArgument(json)
      const user = await withDeputy(options, (deps) =>
        deps.users.setClaims(email, claims, cliActor()),
      )
      output(
        options,
        userToWire(user),
        () => `${user.email} claims: ${JSON.stringify(user.claims)}`,
      )
    })

  users
    .command('set-password <email>')
    .description('set a new password (read from stdin) and end their sessions')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (email: string, opts: { passwordStdin?: boolean }, command: Command) => {
      const options = globalOptions(command)
      const password = await passwordFromStdin(opts.passwordStdin)
      await withDeputy(options, (deps) => deps.users.setPassword(email, password, cliActor()))
      output(
        options,
        { email: email.trim().toLowerCase(), password_changed: true },
        () => `password changed for ${email.trim().toLowerCase()}`,
      )
    })
}

interface AddOptions {
  name: string
  roles?: string
  passwordStdin?: boolean
}
