import type { Command } from 'commander'
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CHILDREN,
  DEFAULT_MAX_CHILDREN_PER_PERSON,
  INHERITED_ENVIRONMENT,
} from '../../gateway/stdio-limits.js'
import { DeputyError } from '../../lib/errors.js'

/** The flags of `deputy gateway`. */
export interface GatewayCommandOptions {
  upstream?: string
  upstreamCommand?: string
  resource?: string
  issuer?: string
  jwksUri?: string
  rules?: string
  port?: string
  host?: string
  auditFailure?: string
  upstreamEnv?: string[]
  maxChildren?: string
  maxChildrenPerPerson?: string
  idleTimeout?: string
  approvalsClientId?: string
  approvalWait?: string
}

/** Where the gateway's CIBA client secret is read from: never a flag, which `ps` would show. */
export const CIBA_SECRET_VARIABLE = 'DEPUTY_GATEWAY_CIBA_CLIENT_SECRET'

export const DEFAULT_PORT = 8090

export function invalid(message: string): DeputyError {
  return new DeputyError('ERR_INVALID_INPUT', message)
}

export function httpUrl(flag: string, value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(`${flag} must be a URL, not "${value}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${flag} must be an http or https URL, not "${value}"`)
  }
  return url
}

export function positiveInteger(
  flag: string,
  value: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const number = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw invalid(`${flag} must be a positive whole number, not "${value}"`)
  }
  if (number > max) throw invalid(`${flag} must be at most ${max}, not ${value}`)
  return number
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * The variables `--upstream-env` gives the child: `NAME=value` as written, `NAME` copied from the
 * gateway's environment. Deputy's own settings (`DEPUTY_*`) are never passed on.
 */
export function upstreamEnvironment(
  specs: readonly string[],
  parent: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const spec of specs) {
    const at = spec.indexOf('=')
    const name = at < 0 ? spec : spec.slice(0, at)
    if (!ENV_NAME.test(name)) {
      throw invalid(`--upstream-env takes NAME or NAME=value, not "${spec}"`)
    }
    if (name.toUpperCase().startsWith('DEPUTY_')) {
      throw invalid(
        `--upstream-env ${name}: Deputy's own settings are never passed to the upstream`,
      )
    }
    const value = at < 0 ? parent[name] : spec.slice(at + 1)
    if (value === undefined) {
      throw invalid(`--upstream-env ${name}: ${name} is not set in the gateway's environment`)
    }
    env[name] = value
  }
  return env
}

const collect = (value: string, previous: string[]) => [...previous, value]

/**
 * `deputy gateway`: puts an existing MCP server (Streamable HTTP or stdio) behind OAuth with
 * per-tool rules and audit, without changing it.
 */
export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description('protect an existing MCP server: discovery, token checks, per-tool rules, audit')
    .option('--upstream <url>', "the MCP server's Streamable HTTP endpoint")
    .option('--upstream-command <command>', 'run this stdio MCP server (one process per session)')
    .option(
      '--upstream-env <NAME[=value]>',
      `give the stdio server this variable (repeatable); it gets only ${INHERITED_ENVIRONMENT.join(', ')} otherwise`,
      collect,
      [],
    )
    .option(
      '--max-children <n>',
      `most stdio server processes at once (default ${DEFAULT_MAX_CHILDREN})`,
    )
    .option(
      '--max-children-per-person <n>',
      `most stdio server processes one person holds (default ${DEFAULT_MAX_CHILDREN_PER_PERSON})`,
    )
    .option(
      '--idle-timeout <seconds>',
      `stop a stdio server process idle this long (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})`,
    )
    .option('--issuer <url>', 'issuer of the access tokens (a Deputy or any OAuth server)')
    .option(
      '--resource <url>',
      "public URL of the gateway's MCP endpoint (default http://localhost:<port>/mcp)",
    )
    .option('--jwks-uri <url>', "the issuer's JWKS (default: from the issuer's metadata)")
    .option('--rules <file>', 'JSON file of per-tool rules (scopes, roles, permissions)')
    .option('--port <port>', `port to listen on (default ${DEFAULT_PORT})`)
    .option('--host <host>', 'interface to listen on (default 127.0.0.1)')
    .option(
      '--audit-failure <refuse|continue>',
      'when a call cannot be recorded: refuse it (default) or log and go on',
    )
    .option(
      '--approvals-client-id <id>',
      `the gateway's CIBA client at the issuer (a Deputy), for rules with an approval; its secret in ${CIBA_SECRET_VARIABLE}`,
    )
    .option(
      '--approval-wait <seconds>',
      'how long a call waits for the approval before answering pending (default 30)',
    )
    // The gateway, its upstreams and the MCP SDK load only when the command runs: every other
    // `deputy` command (and `--help`) would pay for them otherwise.
    .action(async (opts: GatewayCommandOptions, command: Command) =>
      (await import('./gateway-run.js')).runGateway(command, opts),
    )
}
