import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { DeputyError } from '../../lib/errors.js'
import {
  clientToWire,
  createdClientToWire,
  delegationRuleToWire,
  metadataHostToWire,
} from '../../oauth/admin-api.js'
import {
  CLIENT_AUTH_METHODS,
  GRANT_TYPES,
  type GrantType,
  type RegisterClientInput,
} from '../../oauth/clients.js'
import type { Resource } from '../../oauth/resources.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor } from './users.js'

const collect = (value: string, previous: string[]) => [...previous, value]

interface AddOptions {
  name: string
  redirectUri: string[]
  public?: boolean
  grantType: string[]
  authMethod?: string
  jwks?: string
  jwksUri?: string
  scope: string[]
  resource: string[]
  backchannelTokenDeliveryMode?: string
  backchannelClientNotificationEndpoint?: string
}

interface AllowHostOptions {
  resource: string
  scope: string[]
}

/** Checks a flag's value against the allowed ones, naming them when it is not one. */
function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new DeputyError('ERR_INVALID_INPUT', `${flag} must be one of ${allowed.join(', ')}`)
}

/** Reads a JWK Set file for private_key_jwt, with one line saying what is wrong otherwise. */
function readJwks(path: string): RegisterClientInput['jwks'] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', `--jwks ${path}: cannot read the file`)
  }
  try {
    return JSON.parse(text) as RegisterClientInput['jwks']
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', `--jwks ${path} is not valid JSON (a JWK Set)`)
  }
}

/**
 * Refuses an allowed scope that no resource offers (or, with `--resource`, none of those): a
 * client_credentials token only carries scopes its resource offers, so such a scope would be
 * stored and never granted. A `--resource` Deputy does not know is left for register to name.
 */
function assertScopesOffered(resources: Resource[], scopes: string[], named: string[]): void {
  const candidates = named.length > 0 ? resources.filter((r) => named.includes(r.uri)) : resources
  if (named.length > 0 && candidates.length < new Set(named).size) return
  const offered = [...new Set(candidates.flatMap((r) => Object.keys(r.scopes)))].sort()
  const unknown = scopes.find((scope) => !offered.includes(scope))
  if (unknown === undefined) return
  const who = named.length > 0 ? named.join(', ') : 'no resource'
  const verb = named.length === 1 ? 'does' : 'do'
  const known =
    offered.length > 0 ? `known scopes: ${offered.join(', ')}` : 'no scope is offered yet'
  throw new DeputyError(
    'ERR_INVALID_INPUT',
    named.length > 0
      ? `--scope ${unknown}: ${who} ${verb} not offer it (${known})`
      : `--scope ${unknown}: no resource offers it (${known}; add scopes with \`deputy resources add <uri> --scope name=description\`)`,
  )
}

/** `deputy clients …`: add, list, disable, enable, delete OAuth clients. */
export function registerClients(program: Command): void {
  const clients = program.command('clients').description('manage OAuth clients (agents, apps)')

  clients
    .command('add')
    .description('register a client; its secret is printed once')
    .requiredOption('--name <name>', 'the name people see on the consent page')
    .option('--redirect-uri <uri>', 'an exact redirect URI (repeatable)', collect, [])
    .option('--public', 'a public client (no secret; PKCE only), e.g. a desktop or CLI agent')
    .option(
      '--grant-type <type>',
      // From the list a client may register for, so a new grant type (CIBA) is named here too.
      `${GRANT_TYPES.slice(0, -1).join(', ')} or ${GRANT_TYPES.at(-1)} (repeatable)`,
      collect,
      [],
    )
    .option(
      '--auth-method <method>',
      'none, client_secret_basic, client_secret_post or private_key_jwt',
    )
    .option('--jwks <file>', "a JSON file with the client's public keys (private_key_jwt)")
    .option(
      '--jwks-uri <url>',
      'where the client publishes its public keys (private_key_jwt; fetched, cached, refetched on a new kid)',
    )
    .option(
      '--scope <scope>',
      'a scope the client may ask for with client_credentials (repeatable)',
      collect,
      [],
    )
    .option(
      '--resource <uri>',
      'a resource the client may get client_credentials tokens for (repeatable; default: any offering its scopes)',
      collect,
      [],
    )
    .option(
      '--backchannel-token-delivery-mode <mode>',
      'CIBA: poll (default) or ping, with --grant-type urn:openid:params:grant-type:ciba',
    )
    .option(
      '--backchannel-client-notification-endpoint <url>',
      'CIBA ping mode: where Deputy posts {auth_req_id} once the person has decided',
    )
    .action(async (opts: AddOptions, command: Command) => {
      const options = globalOptions(command)
      const created = await withDeputy(options, async (deps) => {
        if (opts.scope.length > 0)
          assertScopesOffered(await deps.resources.list(), opts.scope, opts.resource)
        return deps.clients.register(
          {
            name: opts.name,
            redirectUris: opts.redirectUri,
            public: opts.public === true,
            grantTypes:
              opts.grantType.length > 0
                ? opts.grantType.map((g): GrantType => oneOf('--grant-type', g, GRANT_TYPES))
                : undefined,
            tokenEndpointAuthMethod:
              opts.authMethod === undefined
                ? undefined
                : oneOf('--auth-method', opts.authMethod, CLIENT_AUTH_METHODS),
            jwks: opts.jwks ? readJwks(opts.jwks) : undefined,
            jwksUri: opts.jwksUri,
            allowedScopes: opts.scope,
            ...(opts.resource.length > 0 && { allowedResources: opts.resource }),
            ...(opts.backchannelTokenDeliveryMode !== undefined && {
              backchannelTokenDeliveryMode: oneOf(
                '--backchannel-token-delivery-mode',
                opts.backchannelTokenDeliveryMode,
                ['poll', 'ping'] as const,
              ),
            }),
            ...(opts.backchannelClientNotificationEndpoint !== undefined && {
              backchannelClientNotificationEndpoint: opts.backchannelClientNotificationEndpoint,
            }),
          },
          cliActor(),
        )
      })
      output(options, createdClientToWire(created), () =>
        [
          `client_id: ${created.client.clientId}`,
          ...(created.clientSecret
            ? [
                `client_secret: ${created.clientSecret}`,
                'The secret is shown only now: store it where the client can read it.',
              ]
            : []),
        ].join('\n'),
      )
    })

  clients
    .command('list')
    .description('list clients (pre-registered, dynamic, metadata documents)')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.clients.list())
      output(options, list.map(clientToWire), () =>
        table(
          list.map((c) => ({
            client_id: c.clientId,
            name: c.name,
            kind: c.kind,
            status: c.status,
            auth: c.tokenEndpointAuthMethod,
            redirect_uris: c.redirectUris,
          })),
          ['client_id', 'name', 'kind', 'status', 'auth', 'redirect_uris'],
        ),
      )
    })

  clients
    .command('allow-host <host>')
    .description(
      'let the metadata-document clients of a host use client_credentials for a resource, with these scopes',
    )
    .requiredOption('--resource <uri>', 'the resource their tokens may be for')
    .option('--scope <scope>', 'a scope they may ask for there (repeatable)', collect, [])
    .action(async (host: string, opts: AllowHostOptions, command: Command) => {
      const options = globalOptions(command)
      const grant = await withDeputy(options, (deps) =>
        deps.metadataHosts.allow({ host, resource: opts.resource, scopes: opts.scope }, cliActor()),
      )
      output(
        options,
        metadataHostToWire(grant),
        () =>
          `clients whose metadata document is on ${grant.host} may now get tokens for ${grant.resource} with: ${grant.scopes.join(' ')}`,
      )
    })

  clients
    .command('disallow-host <host>')
    .description('take back what allow-host gave a host (at one resource, or everywhere)')
    .option('--resource <uri>', 'only at this resource')
    .action(async (host: string, opts: { resource?: string }, command: Command) => {
      const options = globalOptions(command)
      const removed = await withDeputy(options, (deps) =>
        deps.metadataHosts.disallow(host, opts.resource, cliActor()),
      )
      output(
        options,
        { host, resource: opts.resource ?? null, removed },
        () =>
          `${host} may no longer get client_credentials tokens${opts.resource ? ` for ${opts.resource}` : ''}`,
      )
    })

  clients
    .command('hosts')
    .description('list the metadata-document hosts allowed client_credentials, per resource')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.metadataHosts.list())
      output(options, list.map(metadataHostToWire), () =>
        table(
          list.map((g) => ({ host: g.host, resource: g.resource, scopes: g.scopes.join(' ') })),
          ['host', 'resource', 'scopes'],
        ),
      )
    })

  clients
    .command('set-delegation <client-id>')
    .description(
      'let a client act for people (RFC 8693 token exchange) toward these resources; replaces what it had',
    )
    .option('--to <uri>', 'a resource its exchanged tokens may be for (repeatable)', collect, [])
    .option('--impersonate', 'its exchanged tokens carry no act: it stands in for the person')
    .option(
      '--clear',
      'take back every resource: it may act only where a token names it in may_act',
    )
    .action(
      async (
        clientId: string,
        opts: { to: string[]; impersonate?: boolean; clear?: boolean },
        command: Command,
      ) => {
        const options = globalOptions(command)
        if (opts.clear === true && (opts.to.length > 0 || opts.impersonate === true))
          throw new DeputyError('ERR_INVALID_INPUT', '--clear takes no --to or --impersonate')
        if (opts.clear !== true && opts.to.length === 0)
          throw new DeputyError('ERR_INVALID_INPUT', 'name a resource with --to, or use --clear')
        const rule = await withDeputy(options, (deps) =>
          deps.delegationRules.set(
            clientId,
            {
              resources: opts.clear === true ? [] : opts.to,
              impersonate: opts.impersonate === true,
            },
            cliActor(),
          ),
        )
        output(options, delegationRuleToWire(rule), () =>
          rule.resources.length === 0
            ? `${clientId} may no longer act for people (except where a token names it in may_act)`
            : `${clientId} may now act for people toward ${rule.resources.join(', ')}${rule.impersonate ? ', impersonating them (no act claim)' : ''}`,
        )
      },
    )

  clients
    .command('disable <client-id>')
    .description('stop a client: no new tokens, its grants and refresh tokens end now')
    .action(async (clientId: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.clients.disable(clientId, cliActor()))
      output(
        options,
        { client_id: clientId, status: 'disabled' },
        () => `${clientId} is now disabled`,
      )
    })

  clients
    .command('enable <client-id>')
    .description('let a disabled client ask for tokens again (the grants that ended stay ended)')
    .action(async (clientId: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.clients.enable(clientId, cliActor()))
      output(options, { client_id: clientId, status: 'active' }, () => `${clientId} is now enabled`)
    })

  clients
    .command('delete <client-id>')
    .description('delete a client with its grants and tokens')
    .action(async (clientId: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.clients.delete(clientId, cliActor()))
      output(options, { client_id: clientId, deleted: true }, () => `deleted ${clientId}`)
    })
}
