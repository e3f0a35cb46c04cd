import { createServer } from 'node:net'
import type { Command } from 'commander'
import type { ResolvedConfig } from '../../config/load.js'
import { createDeputy, type Deputy, type DeputyDeps, metricsResponse } from '../../deputy.js'
import { randomToken } from '../../lib/random.js'
import { listen, type ServedFetch, serveFetch } from '../../server.js'
import { commandConfig, globalOptions } from '../context.js'

/** How long after the grace `deputy start` waits for the database to close before exiting anyway. */
const FORCED_EXIT_AFTER_GRACE_MS = 5_000

/** The flags `deputy start` and `deputy demo` share. */
export interface StartOptions {
  port?: string
  host?: string
  issuer?: string
  production?: boolean
}

/** Adds the serving flags to a command; `--production` only where production makes sense. */
export function addServeOptions(command: Command, options: { production: boolean }): Command {
  command
    .option('--port <port>', 'port to listen on (env PORT; default 8080)')
    .option('--host <host>', 'interface to listen on (default 127.0.0.1)')
    .option('--issuer <url>', 'public URL of this Deputy (default http://localhost:<port>)')
  if (options.production) command.option('--production', 'production mode: refuse unsafe defaults')
  return command
}

/** `deputy start`: serves Deputy until SIGTERM or SIGINT, then shuts down gracefully. */
export function registerStart(program: Command): void {
  addServeOptions(program.command('start').description('start the Deputy server'), {
    production: true,
  }).action((opts: StartOptions, command: Command) => serveDeputy(command, opts))
}

/**
 * Work a command does after Deputy is built and before it listens (seeding, mounting routes);
 * returns lines for the end of the banner.
 */
export type BeforeListen = (deputy: Deputy, config: ResolvedConfig) => Promise<string[]>

/**
 * Builds Deputy from the flags, creates the first administrator if needed, runs `beforeListen`,
 * serves until SIGTERM or SIGINT, and prints the banner. `deputy start` and `deputy demo` share it.
 */
export async function serveDeputy(
  command: Command,
  opts: StartOptions,
  beforeListen?: BeforeListen,
): Promise<void> {
  const options = globalOptions(command)
  let config = commandConfig(options, {
    port: opts.port,
    host: opts.host,
    issuer: opts.issuer,
    mode: opts.production ? 'production' : undefined,
  })
  // `--port 0` asks for any free port; the issuer must name the real one, or every token,
  // metadata document and redirect would carry port 0.
  if (config.port === 0 && config.issuer === 'http://localhost:0') {
    const port = await freePort(config.host)
    config = { ...config, port, issuer: `http://localhost:${port}` }
  }
  const deputy = await createDeputy(config, { processMetrics: true })
  let firstAdmin: FirstAdmin
  let extraLines: string[]
  try {
    firstAdmin = await ensureFirstAdmin(deputy.deps, config)
    extraLines = beforeListen ? await beforeListen(deputy, config) : []
  } catch (err) {
    await deputy.close()
    throw err
  }
  const server = await listen(deputy, { port: config.port, host: config.host })
  const metricsServer = await serveMetrics(deputy, config)
  // Handlers go in before anything is printed: whoever reads the banner may signal at once.
  const stop = async (signal: string) => {
    const graceMs = config.shutdownGraceSeconds * 1000
    deputy.deps.logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down')
    // The bound on the whole exit: requests get the grace, closing the database a few seconds
    // more; a close that hangs past that (a database that stopped answering) ends the process.
    setTimeout(() => {
      deputy.deps.logger.error({ signal }, 'shutdown did not finish in time; exiting')
      process.exit(1)
    }, graceMs + FORCED_EXIT_AFTER_GRACE_MS).unref()
    await metricsServer?.drain({ graceMs })
    await server.shutdown({ graceMs })
    process.exit(0)
  }
  process.once('SIGTERM', () => void stop('SIGTERM'))
  process.once('SIGINT', () => void stop('SIGINT'))
  const publicUrl = config.issuer
  const lines = [
    `Deputy is running at ${publicUrl} (listening on ${server.url}, ${config.mode} mode)`,
    `  database:   ${deputy.deps.store.location}`,
    `  master key: ${deputy.masterKey.origin === 'generated' ? `generated at ${config.masterKeyFile} (keep it safe)` : deputy.masterKey.origin}${previousKeysNote(deputy.masterKey.keys.length - 1)}`,
    `  health:     ${publicUrl}/healthz`,
    `  JWKS:       ${publicUrl}/jwks`,
    ...(metricsServer ? [`  metrics:    ${metricsServer.url}/metrics`] : []),
    ...firstAdminLines(firstAdmin, publicUrl),
    ...extraLines,
  ]
  process.stderr.write(`${lines.join('\n')}\n`)
}

/**
 * `/metrics` without credentials on `metricsPort` of `metricsHost` (loopback by default), for a
 * Prometheus beside Deputy; nothing else is served there.
 */
async function serveMetrics(deputy: Deputy, config: ResolvedConfig): Promise<ServedFetch | null> {
  if (config.metricsPort === undefined) return null
  return serveFetch(
    (request) =>
      request.method === 'GET' && new URL(request.url).pathname === '/metrics'
        ? metricsResponse(deputy.deps.metrics)
        : new Response('not found: only /metrics is served here\n', { status: 404 }),
    { port: config.metricsPort, host: config.metricsHost },
  )
}

/** The first administrator this start created, or why none was needed or made. */
export type FirstAdmin =
  | { kind: 'existing' }
  | { kind: 'created'; email: string; password: string }
  | { kind: 'needed' }

/** Email of the administrator a development start creates in an empty database. */
export const FIRST_ADMIN_EMAIL = 'admin@deputy.local'

/**
 * With no users at all, nobody could sign in. A development start creates an administrator with a
 * generated password so a first try works at once; production creates nothing, because a
 * password printed to a log is a password leaked, and says how to make the first one instead.
 */
export async function ensureFirstAdmin(
  deps: DeputyDeps,
  config: ResolvedConfig,
): Promise<FirstAdmin> {
  const anyone = await deps.db.selectFrom('users').select('id').limit(1).executeTakeFirst()
  if (anyone) return { kind: 'existing' }
  if (config.mode === 'production') return { kind: 'needed' }
  const password = randomToken(18)
  try {
    await deps.users.create(
      { email: FIRST_ADMIN_EMAIL, name: 'Administrator', password, roles: ['admin'] },
      { type: 'system', id: 'deputy', label: 'first start' },
    )
  } catch (err) {
    // Another process sharing the database got there first; its banner shows the password.
    if ((err as { code?: string }).code === 'ERR_CONFLICT') return { kind: 'existing' }
    throw err
  }
  return { kind: 'created', email: FIRST_ADMIN_EMAIL, password }
}

function firstAdminLines(admin: FirstAdmin, publicUrl: string): string[] {
  if (admin.kind === 'created') {
    return [
      '',
      `Sign in as the first administrator at ${publicUrl}/login`,
      `  email:      ${admin.email}`,
      `  password:   ${admin.password}`,
      '  This password is shown only once. Change it with:',
      `    deputy users set-password ${admin.email} --password-stdin`,
    ]
  }
  if (admin.kind === 'needed') {
    return [
      '',
      `No administrator exists yet. Create the first one, then sign in at ${publicUrl}/login:`,
      '  deputy users add you@example.com --name "You" --roles admin --password-stdin',
    ]
  }
  return [`  sign in:    ${publicUrl}/login`]
}

/** A port the operating system reports free on `host` right now. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, host, () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Previous master keys at start mean a rotation is unfinished (or its last step not taken yet). */
function previousKeysNote(previous: number): string {
  return previous > 0
    ? `, with ${previous} previous key(s) that only open (finish with \`deputy keys rotate-master\`)`
    : ''
}
