import type { Command } from 'commander'
import { createDeputy } from '../../deputy.js'
import { listen } from '../../server.js'
import { commandConfig, globalOptions } from '../context.js'

interface StartOptions {
  port?: string
  host?: string
  issuer?: string
  production?: boolean
}

/** `deputy start`: serves Deputy until SIGTERM or SIGINT, then shuts down gracefully. */
export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start the Deputy server')
    .option('--port <port>', 'port to listen on (env PORT; default 8080)')
    .option('--host <host>', 'interface to listen on (default 127.0.0.1)')
    .option('--issuer <url>', 'public URL of this Deputy (default http://localhost:<port>)')
    .option('--production', 'production mode: refuse unsafe defaults')
    .action(async (opts: StartOptions, command: Command) => {
      const options = globalOptions(command)
      const config = commandConfig(options, {
        port: opts.port,
        host: opts.host,
        issuer: opts.issuer,
        mode: opts.production ? 'production' : undefined,
      })
      const deputy = await createDeputy(config)
      const server = await listen(deputy, { port: config.port, host: config.host })
      const publicUrl = config.issuer
      const lines = [
        `Deputy is running at ${publicUrl} (listening on ${server.url}, ${config.mode} mode)`,
        `  database:   ${deputy.deps.store.location}`,
        `  master key: ${deputy.masterKey.origin === 'generated' ? `generated at ${config.masterKeyFile} (keep it safe)` : deputy.masterKey.origin}`,
        `  health:     ${publicUrl}/healthz`,
        `  JWKS:       ${publicUrl}/jwks`,
      ]
      process.stderr.write(`${lines.join('\n')}\n`)
      const stop = async (signal: string) => {
        deputy.deps.logger.info({ signal }, 'shutting down')
        await server.shutdown()
        process.exit(0)
      }
      process.once('SIGTERM', () => void stop('SIGTERM'))
      process.once('SIGINT', () => void stop('SIGINT'))
    })
}
