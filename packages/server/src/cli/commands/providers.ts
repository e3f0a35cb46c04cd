import type { Command } from 'commander'
import { DeputyError } from '../../lib/errors.js'
import { providerToWire } from '../../providers/admin-routes.js'
import { PROVIDER_TYPES } from '../../providers/catalogue.js'
import type {
  Provider,
  ProviderEndpoints,
  ProviderType,
  ProviderUse,
} from '../../providers/types.js'
import { globalOptions, output, readStdin, table, withDeputy } from '../context.js'
import { cliActor, commaList } from './users.js'

const collect = (value: string, previous: string[]) => [...previous, value]

interface EndpointOptions {
  authorizationEndpoint?: string
  tokenEndpoint?: string
  userinfoEndpoint?: string
  revocationEndpoint?: string
  jwksUri?: string
  userApi?: string
  emailsApi?: string
}

interface AddOptions extends EndpointOptions {
  type: string
  clientId: string
  clientSecretStdin?: boolean
  issuer?: string
  displayName?: string
  use?: string
  scope: string[]
  defaultRole: string[]
  allowClient: string[]
}

function endpointOverrides(opts: EndpointOptions): Partial<ProviderEndpoints> {
  const out: Partial<ProviderEndpoints> = {}
  const map: [keyof EndpointOptions, keyof ProviderEndpoints][] = [
    ['authorizationEndpoint', 'authorization_endpoint'],
    ['tokenEndpoint', 'token_endpoint'],
    ['userinfoEndpoint', 'userinfo_endpoint'],
    ['revocationEndpoint', 'revocation_endpoint'],
    ['jwksUri', 'jwks_uri'],
    ['userApi', 'user_api'],
    ['emailsApi', 'emails_api'],
  ]
  for (const [option, field] of map) {
    const value = opts[option]
    if (value !== undefined) (out as Record<string, string>)[field] = value
  }
  return out
}

/** `--scope "a b" --scope c` and `--scope a,b`: every scope once. */
function scopeList(values: string[]): string[] | undefined {
  if (values.length === 0) return undefined
  return [...new Set(values.flatMap((v) => v.split(/[\s,]+/)).filter(Boolean))]
}

function usesOf(value: string | undefined): ProviderUse[] | undefined {
  if (value === undefined) return undefined
  const uses = commaList(value)
  for (const use of uses)
    if (use !== 'sign-in' && use !== 'connect')
      throw new DeputyError(
        'ERR_INVALID_INPUT',
        '--use must be sign-in, connect or sign-in,connect',
      )
  return uses as ProviderUse[]
}

function summary(p: Provider): string {
  return `${p.name} (${p.type}, ${p.uses.join(' and ')}, ${p.status})`
}

/** One provider's details for a person. */
function details(p: Provider): string {
  const lines = [
    ['name', p.name],
    ['type', `${p.type} (${p.displayName})`],
    ['status', p.status],
    ['client id', p.clientId],
    ['client secret', p.hasClientSecret ? 'set (sealed)' : 'none (PKCE only)'],
    ['issuer', p.issuer ?? '-'],
    ['uses', p.uses.join(', ')],
    ['scopes', p.scopes.join(' ') || '-'],
    ['default roles', p.defaultRoles.join(', ') || '-'],
    ['allowed clients', p.allowedClients.join(', ') || '-'],
  ]
  for (const [key, value] of Object.entries(p.endpoints))
    if (typeof value === 'string') lines.push([key, value])
  const width = Math.max(...lines.map(([key]) => key.length)) + 2
  return lines.map(([key, value]) => `${`${key}:`.padEnd(width)}${value}`).join('\n')
}

function withEndpointOptions(command: Command): Command {
  return command
    .option('--authorization-endpoint <url>', 'override the authorization endpoint')
    .option('--token-endpoint <url>', 'override the token endpoint')
    .option('--userinfo-endpoint <url>', 'override (or, for oauth2, give) the userinfo endpoint')
    .option('--revocation-endpoint <url>', 'override the revocation endpoint')
    .option('--jwks-uri <url>', 'override the JWKS URI')
    .option('--user-api <url>', "override the provider's user API (GitHub /user, Slack)")
    .option('--emails-api <url>', "override GitHub's /user/emails")
}

/** `deputy providers …`: the upstream providers people sign in with and connect accounts at. */
export function registerProviders(program: Command): void {
  const providers = program
    .command('providers')
    .description('manage upstream providers (sign in with GitHub …, connected accounts)')

  withEndpointOptions(
    providers
      .command('add <name>')
      .description('add a provider; OpenID types are discovered at their issuer now')
      .requiredOption('--type <type>', `one of ${PROVIDER_TYPES.join(', ')}`)
      .requiredOption('--client-id <id>', 'the client id Deputy has at the provider')
      .option('--client-secret-stdin', 'read the client secret from stdin (never an argument)')
      .option('--issuer <url>', 'OpenID issuer (required for oidc; microsoft: the tenant’s)')
      .option('--display-name <name>', 'what the sign-in button says (default: the type’s)')
      .option('--use <uses>', 'sign-in, connect or sign-in,connect (default both)')
      .option('--scope <scopes>', 'scopes to ask for (repeatable; default the type’s)', collect, [])
      .option(
        '--default-role <role>',
        'role of people created by a sign-in (repeatable)',
        collect,
        [],
      )
      .option(
        '--allow-client <client_id>',
        'a client allowed the token exchange (repeatable)',
        collect,
        [],
      ),
  ).action(async (name: string, opts: AddOptions, command: Command) => {
    const options = globalOptions(command)
    if (!(PROVIDER_TYPES as string[]).includes(opts.type))
      throw new DeputyError(
        'ERR_INVALID_INPUT',
        `--type must be one of ${PROVIDER_TYPES.join(', ')}`,
      )
    const clientSecret = opts.clientSecretStdin ? await readStdin() : undefined
    if (opts.clientSecretStdin && !clientSecret)
      throw new DeputyError('ERR_INVALID_INPUT', '--client-secret-stdin read nothing from stdin')
    const provider = await withDeputy(options, (deps) =>
      deps.providers.add(
        {
          name,
          type: opts.type as ProviderType,
          clientId: opts.clientId,
          clientSecret,
          issuer: opts.issuer,
          displayName: opts.displayName,
          uses: usesOf(opts.use),
          scopes: scopeList(opts.scope),
          defaultRoles: opts.defaultRole.flatMap((r) => commaList(r)),
          allowedClients: opts.allowClient,
          endpoints: endpointOverrides(opts),
        },
        cliActor(),
      ),
    )
    output(options, providerToWire(provider), () => `added ${summary(provider)}`)
  })

  providers
    .command('list')
    .description('list providers')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.providers.list())
      output(options, list.map(providerToWire), () =>
        table(
          list.map((p) => ({
            name: p.name,
            type: p.type,
            status: p.status,
            uses: p.uses,
            client_id: p.clientId,
            issuer: p.issuer,
          })),
          ['name', 'type', 'status', 'uses', 'client_id', 'issuer'],
        ),
      )
    })

  providers
    .command('show <name>')
    .description("a provider's settings and endpoints (never its secret)")
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const provider = await withDeputy(options, (deps) => deps.providers.get(name))
      if (!provider) throw new DeputyError('ERR_NOT_FOUND', `no provider named ${name}`)
      output(options, providerToWire(provider), () => details(provider))
    })

  for (const [verb, status, sentence] of [
    ['disable', 'disabled', 'no sign-in or connecting through it until enabled'],
    ['enable', 'active', 'people can sign in and connect through it again'],
  ] as const) {
    providers
      .command(`${verb} <name>`)
      .description(`${verb} a provider: ${sentence}`)
      .action(async (name: string, _opts: unknown, command: Command) => {
        const options = globalOptions(command)
        const provider = await withDeputy(options, (deps) =>
          deps.providers.setStatus(name, status, cliActor()),
        )
        output(options, providerToWire(provider), () => `${verb}d ${summary(provider)}`)
      })
  }

  providers
    .command('remove <name>')
    .description('remove a provider with its sign-in identities and connections')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.providers.remove(name, cliActor()))
      output(options, { removed: name }, () => `removed ${name}`)
    })

  for (const [verb, allow] of [
    ['allow-client', true],
    ['disallow-client', false],
  ] as const) {
    providers
      .command(`${verb} <name> <client_id>`)
      .description(
        allow
          ? "let a confidential client exchange for people's tokens at this provider"
          : 'take that back',
      )
      .action(async (name: string, clientId: string, _opts: unknown, command: Command) => {
        const options = globalOptions(command)
        const provider = await withDeputy(options, async (deps) => {
          const current = await deps.providers.get(name)
          if (!current) throw new DeputyError('ERR_NOT_FOUND', `no provider named ${name}`)
          if (allow) {
            // The exchange takes only a client that authenticates: a public one could be anyone.
            const client = await deps.clients.get(clientId)
            if (!client) throw new DeputyError('ERR_NOT_FOUND', `no client ${clientId}`)
            if (client.tokenEndpointAuthMethod === 'none')
              throw new DeputyError(
                'ERR_INVALID_INPUT',
                `${clientId} is a public client: only confidential clients may exchange for provider tokens`,
              )
          }
          const rest = current.allowedClients.filter((c) => c !== clientId)
          return deps.providers.update(
            name,
            { allowedClients: allow ? [...rest, clientId] : rest },
            cliActor(),
          )
        })
        output(options, providerToWire(provider), () =>
          allow
            ? `${clientId} may exchange for ${name} tokens`
            : `${clientId} may no longer exchange for ${name} tokens`,
        )
      })
  }
}
