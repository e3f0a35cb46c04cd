import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { listDetailTypes, putDetailType } from '../../approvals/admin-routes.js'
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

/** A JSON Schema from a file: one clear line when it cannot be read or is not a JSON object. */
export function readSchemaFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `--schema-file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
  let schema: unknown
  try {
    schema = JSON.parse(text)
  } catch (err) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `--schema-file ${path} is not JSON: ${(err as Error).message}`,
    )
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema))
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `--schema-file ${path} must hold a JSON Schema object`,
    )
  return schema as Record<string, unknown>
}

interface DetailTypeOptions {
  schemaFile: string
  template: string
  description?: string
  highRisk?: boolean
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

  const detailTypes = resources
    .command('detail-types')
    .description('manage the authorization detail types (RFC 9396) a resource accepts')

  detailTypes
    .command('add <resource> <type>')
    .description('register a detail type for a resource, or replace it')
    .requiredOption(
      '--schema-file <path>',
      'JSON Schema (draft 2020-12) of one detail of this type',
    )
    .requiredOption(
      '--template <sentence>',
      'what people read, with {field.path} placeholders, e.g. "Pay {instructedAmount.amount} {instructedAmount.currency} to {creditorName}"',
    )
    .option('--description <text>', 'what the type is for (default: the template)')
    .option('--high-risk', 'approving a detail of this type needs a fresh sign-in')
    .action(async (uri: string, type: string, opts: DetailTypeOptions, command: Command) => {
      const options = globalOptions(command)
      const schema = readSchemaFile(opts.schemaFile)
      const added = await withDeputy(options, (deps) =>
        putDetailType(
          deps,
          {
            resource: uri,
            type,
            schema,
            template: opts.template,
            description: opts.description,
            highRisk: opts.highRisk === true,
          },
          cliActor(),
        ),
      )
      output(
        options,
        added,
        () =>
          `registered detail type ${added.type} for ${added.resource}${added.high_risk ? ' (high risk)' : ''}`,
      )
    })

  detailTypes
    .command('list <resource>')
    .description('list the detail types a resource accepts (the built-in ones first)')
    .action(async (uri: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => listDetailTypes(deps, uri))
      output(options, list, () =>
        table(
          list.map((t) => ({
            type: t.type,
            template: t.template,
            high_risk: t.high_risk ? 'yes' : '',
            built_in: t.built_in ? 'yes' : '',
          })),
          ['type', 'template', 'high_risk', 'built_in'],
        ),
      )
    })

  detailTypes
    .command('remove <resource> <type>')
    .description('remove a detail type: requests with it are refused from now on')
    .action(async (uri: string, type: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.detailTypes.remove(uri, type, cliActor()))
      output(options, { removed: { resource: uri, type } }, () => `removed ${type} from ${uri}`)
    })
}
