import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { DeputyError } from '../../lib/errors.js'
import { trustedIssuerToWire } from '../../oauth/trusted-issuer-routes.js'
import {
  type AddTrustedIssuerInput,
  TRUSTED_ISSUER_KINDS,
  type TrustedIssuer,
  type TrustedIssuerKind,
} from '../../oauth/trusted-issuers.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor } from './users.js'

const collect = (value: string, previous: string[]) => [...previous, value]

interface AddOptions {
  kind: string
  issuer: string
  jwksUri?: string
  jwksFile?: string
  alg: string[]
  audience?: string
  maxLifetime?: string
  linkProvider?: string
  matchEmail?: boolean
}

/** Reads a JWK Set file (`kubectl get --raw /openid/v1/jwks > cluster-jwks.json`). */
function readJwks(path: string): AddTrustedIssuerInput['jwks'] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', `--jwks-file ${path}: cannot read the file`)
  }
  try {
    return JSON.parse(text) as AddTrustedIssuerInput['jwks']
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', `--jwks-file ${path} is not valid JSON (a JWK Set)`)
  }
}

/** `--claim name=value`, split at the first `=` (values hold `:` and `/`). */
function claimsOf(values: string[]): Record<string, string> {
  const claims: Record<string, string> = {}
  for (const value of values) {
    const at = value.indexOf('=')
    if (at <= 0) throw new DeputyError('ERR_INVALID_INPUT', `--claim ${value}: use name=value`)
    claims[value.slice(0, at)] = value.slice(at + 1)
  }
  return claims
}

function details(t: TrustedIssuer): string {
  const lines: [string, string][] = [
    ['name', t.name],
    ['kind', t.kind],
    ['issuer', t.issuer],
    ['keys', t.jwksUri ?? `${t.jwks?.keys.length ?? 0} stored (from a file)`],
    ['algorithms', t.algorithms.join(' ')],
    ['audience', t.audience ?? 'Deputy’s issuer or token endpoint'],
    ['max lifetime', `${t.maxLifetimeSeconds} s`],
  ]
  if (t.kind === 'enterprise-idp') {
    lines.push([
      'people by subject',
      t.linkProvider ? `identities of provider ${t.linkProvider}` : '-',
    ])
    lines.push(['people by email', t.matchEmail ? 'yes' : 'no'])
  }
  for (const rule of t.rules) {
    const claims = Object.entries(rule.claims)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
    lines.push(['rule', `${claims} -> ${rule.client}`])
  }
  if (t.rules.length === 0 && t.kind !== 'enterprise-idp') lines.push(['rules', '(none)'])
  const width = Math.max(...lines.map(([key]) => key.length)) + 2
  return lines.map(([key, value]) => `${`${key}:`.padEnd(width)}${value}`).join('\n')
}

/** `deputy trusted-issuers …`: workload issuers, enterprise IdPs and ID-JAG audiences. */
export function registerTrustedIssuers(program: Command): void {
  const trusted = program
    .command('trusted-issuers')
    .description(
      'manage issuers of jwt-bearer assertions (workload identity, enterprise IdPs) and ID-JAG audiences',
    )

  trusted
    .command('add <name>')
    .description('trust an issuer (see docs/workload-identity.md)')
    .requiredOption('--kind <kind>', TRUSTED_ISSUER_KINDS.join(', '))
    .requiredOption('--issuer <iss>', 'the exact `iss` of its tokens (resource-as: its issuer)')
    .option(
      '--jwks-uri <url>',
      'where its public keys are (fetched, cached, refetched on a new kid)',
    )
    .option('--jwks-file <file>', 'a JSON file with its public keys (a JWK Set)')
    .option(
      '--alg <alg>',
      'an accepted signature algorithm (repeatable; default ES256, RS256, EdDSA)',
      collect,
      [],
    )
    .option(
      '--audience <aud>',
      'the aud its tokens must name (default: Deputy’s issuer or token endpoint)',
    )
    .option('--max-lifetime <seconds>', 'longest an assertion may be valid from now (default 3600)')
    .option(
      '--link-provider <name>',
      'enterprise-idp: the sign-in provider whose identities its subjects are',
    )
    .option('--match-email', 'enterprise-idp: its email claim names Deputy people')
    .action(async (name: string, opts: AddOptions, command: Command) => {
      const options = globalOptions(command)
      if (!(TRUSTED_ISSUER_KINDS as readonly string[]).includes(opts.kind))
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `--kind must be one of ${TRUSTED_ISSUER_KINDS.join(', ')}`,
        )
      const maxLifetime = opts.maxLifetime === undefined ? undefined : Number(opts.maxLifetime)
      if (maxLifetime !== undefined && !Number.isInteger(maxLifetime))
        throw new DeputyError('ERR_INVALID_INPUT', '--max-lifetime must be a number of seconds')
      const added = await withDeputy(options, (deps) =>
        deps.trustedIssuers.add(
          {
            name,
            kind: opts.kind as TrustedIssuerKind,
            issuer: opts.issuer,
            jwksUri: opts.jwksUri,
            jwks: opts.jwksFile === undefined ? undefined : readJwks(opts.jwksFile),
            algorithms: opts.alg.length > 0 ? (opts.alg as never) : undefined,
            audience: opts.audience,
            maxLifetimeSeconds: maxLifetime,
            linkProvider: opts.linkProvider,
            matchEmail: opts.matchEmail === true ? true : undefined,
          },
          cliActor(),
        ),
      )
      output(
        options,
        trustedIssuerToWire(added),
        () => `added ${added.name} (${added.kind}, ${added.issuer})`,
      )
    })

  trusted
    .command('map <name> <client_id>')
    .description(
      'workload: tokens whose claims equal every --claim get tokens as the client; resource-as: the client may get ID-JAGs for it (--claim client_id=<its id there>)',
    )
    .option('--claim <name=value>', 'a claim and its exact value (repeatable)', collect, [])
    .action(async (name: string, client: string, opts: { claim: string[] }, command: Command) => {
      const options = globalOptions(command)
      const updated = await withDeputy(options, (deps) =>
        deps.trustedIssuers.map(name, { client, claims: claimsOf(opts.claim) }, cliActor()),
      )
      output(
        options,
        trustedIssuerToWire(updated),
        () => `mapped ${opts.claim.join(' ')} -> ${client} at ${name}`,
      )
    })

  trusted
    .command('unmap <name> <client_id>')
    .description("remove the issuer's rules for the client")
    .action(async (name: string, client: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const updated = await withDeputy(options, (deps) =>
        deps.trustedIssuers.unmap(name, client, cliActor()),
      )
      output(
        options,
        trustedIssuerToWire(updated),
        () => `removed the rules for ${client} at ${name}`,
      )
    })

  trusted
    .command('list')
    .description('list trusted issuers')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.trustedIssuers.list())
      output(options, list.map(trustedIssuerToWire), () =>
        table(
          list.map((t) => ({
            name: t.name,
            kind: t.kind,
            issuer: t.issuer,
            rules: t.rules.length,
          })),
          ['name', 'kind', 'issuer', 'rules'],
        ),
      )
    })

  trusted
    .command('show <name>')
    .description("a trusted issuer's keys, checks and rules")
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const found = await withDeputy(options, (deps) => deps.trustedIssuers.get(name))
      if (!found) throw new DeputyError('ERR_NOT_FOUND', `no trusted issuer ${name}`)
      output(options, trustedIssuerToWire(found), () => details(found))
    })

  trusted
    .command('remove <name>')
    .description('stop trusting an issuer: its assertions get nothing from now on')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.trustedIssuers.remove(name, cliActor()))
      output(options, { removed: name }, () => `removed ${name}`)
    })
}
