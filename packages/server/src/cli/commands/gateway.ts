import type { Command } from 'commander'
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CHILDREN,
  DEFAULT_MAX_CHILDREN_PER_PERSON,
  INHERITED_ENVIRONMENT,
} from '../../gateway/stdio-limits.js'
import {
  CIBA_SECRET_VARIABLE,
  DEFAULT_PORT,
  type GatewayCommandOptions,
} from './gateway-options.js'

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
