import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { isDeputyError } from '../lib/errors.js'
import { registerAdminKeys } from './commands/admin-keys.js'
import { registerApprovals } from './commands/approvals.js'
import { registerAudit } from './commands/audit.js'
import { registerBackup } from './commands/backup.js'
import { registerClients } from './commands/clients.js'
import { registerDemo } from './commands/demo.js'
import { registerDoctor } from './commands/doctor.js'
import { registerGateway } from './commands/gateway.js'
import { registerKeys } from './commands/keys.js'
import { registerMigrate, registerSweep } from './commands/migrate.js'
import { registerPolicy } from './commands/policy.js'
import { registerProviders } from './commands/providers.js'
import { registerRelations } from './commands/relations.js'
import { registerResources } from './commands/resources.js'
import { registerRoles } from './commands/roles.js'
import { registerStart } from './commands/start.js'
import { registerTrustedIssuers } from './commands/trusted-issuers.js'
import { registerUsers } from './commands/users.js'

/** The version in packages/server/package.json (dist/cli and src/cli both sit two levels below it). */
export function deputyVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  return String(pkg.version)
}

/**
 * An id that begins with `-` (one in 64 of the random ids minted before ids avoided it) reads as
 * an option; commander's message says only "unknown option", so it also says how to pass one.
 */
function withDashHint(message: string): string {
  const unknown = /^unknown option '(-[^-][^']+)'/.exec(message)
  if (!unknown) return message
  return `${message.trimEnd()} (a value that begins with '-' goes after \`--\`, as in \`deputy approvals show -- ${unknown[1]}\`)\n`
}

/** Builds the `deputy` command tree. */
export function buildProgram(): Command {
  const program = new Command('deputy')
    .description('Deputy: identity and access for AI agents')
    .version(deputyVersion(), '-v, --version', 'print the version')
    .option('--config <file>', 'JSON config file')
    .option('--db <file|postgres-url>', 'SQLite file or postgres:// URL (env DEPUTY_DATABASE_URL)')
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError(false)
    .configureOutput({
      outputError: (text, write) => write(`deputy: ${withDashHint(text.replace(/^error: /, ''))}`),
    })
  registerStart(program)
  registerDemo(program)
  registerMigrate(program)
  registerSweep(program)
  registerUsers(program)
  registerRoles(program)
  registerAdminKeys(program)
  registerKeys(program)
  registerAudit(program)
  registerBackup(program)
  registerDoctor(program)
  registerResources(program)
  registerClients(program)
  registerProviders(program)
  registerTrustedIssuers(program)
  registerApprovals(program)
  registerPolicy(program)
  registerRelations(program)
  registerGateway(program)
  return program
}

/** Runs the CLI: a user's mistake is one line on stderr and exit code 1, never a stack trace. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    if (isDeputyError(err)) {
      process.stderr.write(`deputy: ${err.message}\n`)
    } else {
      const message = err instanceof Error ? err.message : String(err)
      process.stderr.write(`deputy: unexpected error: ${message}\n`)
      if (process.env.DEPUTY_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`)
    }
    process.exitCode = 1
  }
}
