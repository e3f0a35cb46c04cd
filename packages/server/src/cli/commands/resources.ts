import type { Command } from 'commander'
import { DeputyError } from '../../lib/errors.js'
import { resourceToWire } from '../../oauth/admin-api.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor, commaList } from './users.js'

const collect = (value: string, previous: string[]) => [...previous, value]

/** `--scope "shop:order=Order shirts for you"` → `['shop:order', 'Order shirts for you']`. */
export function parseScopeOption(value: string): [string, string] {
  const eq = value.indexOf('=')
  if (eq <= 0 || !value.slice(eq + 1).trim())
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `--scope ${JSON.stringify(value)} must be "name=sentence for the consent page", e.g. "shop:order=Order shirts for you"`,
    )
  return [value.slice(0, eq).trim(), value.slice(eq + 1).trim()]
}

interface AddOptions {
  name?: string
  scope: string[]
  claims?: string
  default?: boolean
}

/** `deputy resources …`: add, list, remove the MCP servers and APIs tokens are minted for. */
export function registerResources(program: Command): void {
  const resources = program
    .command('resources')
    .description('manage resources (MCP servers, APIs) that tokens are minted for')

  resources
    .command('add <uri>')
    .description('register a resource, or replace its name, scopes and claims')
    .option('--name <name>', 'display name (default: the host)')
    .option(
      '--scope <scope=sentence>',
      'a scope and the sentence the consent page shows (repeatable)',
      collect,
      [],
    )
    .option(
      '--claims <names>',
      'comma-separated claims copied into access tokens, e.g. name,email,roles,favorite_song',
    )
    .option('--default', 'use this resource when a client sends no resource parameter')
    .action(async (uri: string, opts: AddOptions, command: Command) => {
      const options = globalOptions(command)
      const scopes: Record<string, string> = {}
      for (const value of opts.scope) {
        const [scope, sentence] = parseScopeOption(value)
        if (scope in scopes)
          throw new DeputyError('ERR_INVALID_INPUT', `--scope ${scope} is given twice`)
        scopes[scope] = sentence
      }
      const resource = await withDeputy(options, (deps) =>
        deps.resources.put(
          {
            uri,
            name: opts.name,
            scopes,
            claimsTemplate: commaList(opts.claims),
            isDefault: opts.default === true,
          },
          cliActor(),
        ),
      )
      output(options, resourceToWire(resource), () => {
        const names = Object.keys(resource.scopes)
        return `registered ${resource.uri} (${names.length > 0 ? `scopes ${names.join(', ')}` : 'no scopes'}${resource.isDefault ? ', default' : ''})`
      })
    })

  resources
    .command('list')
    .description('list resources with their scopes and claims')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.resources.list())
      output(options, list.map(resourceToWire), () =>
        table(
          list.map((r) => ({
            uri: r.uri,
            name: r.name,
            scopes: Object.keys(r.scopes),
            claims: r.claimsTemplate,
            default: r.isDefault ? 'yes' : '',
          })),
          ['uri', 'name', 'scopes', 'claims', 'default'],
        ),
      )
    })

  resources
    .command('remove <uri>')
    .description('remove a resource: no new tokens are minted for it')
    .action(async (uri: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.resources.remove(uri, cliActor()))
      output(options, { removed: uri }, () => `removed ${uri}`)
    })
}
