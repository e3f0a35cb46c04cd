import { type AuditFailure, type AuditHook, memoryStateStore, type StateStore } from '@deputy/mcp'
import type { Command } from 'commander'
import { createAuditLog } from '../../audit/chain.js'
import { chainAudit, jsonLineAudit } from '../../gateway/audit.js'
import { issuerJwtVerifier } from '../../gateway/authorization-server.js'
import { createGateway, type Gateway } from '../../gateway/gateway.js'
import { loadRules, NO_RULES, scopesOf } from '../../gateway/rules.js'
import type { Upstream } from '../../gateway/upstream.js'
import { httpUpstream } from '../../gateway/upstream-http.js'
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CHILDREN,
  DEFAULT_MAX_CHILDREN_PER_PERSON,
  MAX_IDLE_TIMEOUT_MS,
  splitCommand,
  stdioUpstream,
} from '../../gateway/upstream-stdio.js'
import { systemClock } from '../../lib/clock.js'
import { createSqlUserStateStore } from '../../mcp-state/sql-user-state.js'
import { serveFetch } from '../../server.js'
import { openStore, type Store } from '../../store/db.js'
import { migrateToLatest } from '../../store/migrate.js'
import { globalOptions, requireExistingDatabase } from '../context.js'
import {
  CIBA_SECRET_VARIABLE,
  DEFAULT_PORT,
  type GatewayCommandOptions,
  httpUrl,
  invalid,
  positiveInteger,
  upstreamEnvironment,
} from './gateway-options.js'

// `deputy gateway`'s run (cli/commands/gateway.ts declares the command): loaded only when it runs.

function upstreamOf(opts: GatewayCommandOptions, onError: (error: Error) => void): Upstream {
  if ((opts.upstream === undefined) === (opts.upstreamCommand === undefined)) {
    throw invalid('give exactly one of --upstream <url> or --upstream-command "<command>"')
  }
  if (opts.upstream !== undefined) {
    const stdioOnly = (
      [
        ['--upstream-env', opts.upstreamEnv !== undefined && opts.upstreamEnv.length > 0],
        ['--max-children', opts.maxChildren !== undefined],
        ['--max-children-per-person', opts.maxChildrenPerPerson !== undefined],
        ['--idle-timeout', opts.idleTimeout !== undefined],
      ] as const
    ).find(([, given]) => given)
    if (stdioOnly !== undefined) throw invalid(`${stdioOnly[0]} applies to --upstream-command only`)
    return httpUpstream({ url: httpUrl('--upstream', opts.upstream).href, onError })
  }
  let words: string[]
  try {
    words = splitCommand(opts.upstreamCommand as string)
  } catch (error) {
    throw invalid(`--upstream-command: ${(error as Error).message}`)
  }
  const [command, ...args] = words
  if (command === undefined) throw invalid('--upstream-command is empty')
  return stdioUpstream({
    command,
    args,
    env: upstreamEnvironment(opts.upstreamEnv ?? [], process.env),
    maxChildren:
      opts.maxChildren === undefined
        ? DEFAULT_MAX_CHILDREN
        : positiveInteger('--max-children', opts.maxChildren),
    maxChildrenPerPerson:
      opts.maxChildrenPerPerson === undefined
        ? DEFAULT_MAX_CHILDREN_PER_PERSON
        : positiveInteger('--max-children-per-person', opts.maxChildrenPerPerson),
    idleTimeoutMs:
      opts.idleTimeout === undefined
        ? DEFAULT_IDLE_TIMEOUT_MS
        : positiveInteger(
            '--idle-timeout',
            opts.idleTimeout,
            Math.floor(MAX_IDLE_TIMEOUT_MS / 1000),
          ) * 1000,
    onError,
  })
}

function auditFailureOf(value: string | undefined): AuditFailure {
  if (value === undefined || value === 'refuse' || value === 'continue') return value ?? 'refuse'
  throw invalid(`--audit-failure must be refuse or continue, not "${value}"`)
}

/**
 * The gateway as a CIBA client of the issuer, when `--approvals-client-id` is given: pending
 * requests in Deputy's SQL state with `--db` (any replica finds them), else in memory.
 */
function approvalsOf(
  opts: GatewayCommandOptions,
  issuer: string,
  store: Store | undefined,
): Parameters<typeof createGateway>[0]['approvals'] {
  if (opts.approvalsClientId === undefined) {
    if (opts.approvalWait !== undefined)
      throw invalid('--approval-wait needs --approvals-client-id')
    return undefined
  }
  const clientSecret = process.env[CIBA_SECRET_VARIABLE]
  if (clientSecret === undefined || clientSecret === '') {
    throw invalid(`--approvals-client-id needs the client's secret in ${CIBA_SECRET_VARIABLE}`)
  }
  const state: StateStore =
    store === undefined ? memoryStateStore() : createSqlUserStateStore({ store })
  return {
    issuer,
    clientId: opts.approvalsClientId,
    clientSecret,
    ...(opts.approvalWait !== undefined && {
      waitSeconds: positiveInteger('--approval-wait', opts.approvalWait, 3600),
    }),
    state,
  }
}

export async function runGateway(command: Command, opts: GatewayCommandOptions): Promise<void> {
  const options = globalOptions(command)
  if (opts.issuer === undefined) throw invalid('--issuer <url> is required')
  httpUrl('--issuer', opts.issuer)
  // Compared exactly with the tokens' `iss` and the metadata's `issuer`: kept as given.
  const issuer = opts.issuer
  const port = opts.port === undefined ? DEFAULT_PORT : Number(opts.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalid(`--port must be a port number, not "${opts.port}"`)
  }
  const host = opts.host ?? '127.0.0.1'
  if (opts.resource !== undefined) httpUrl('--resource', opts.resource)
  if (opts.jwksUri !== undefined) httpUrl('--jwks-uri', opts.jwksUri)
  const rules = opts.rules === undefined ? NO_RULES : loadRules(opts.rules)
  const auditFailure = auditFailureOf(opts.auditFailure)
  if (options.db !== undefined) requireExistingDatabase(options.db)
  const onError = (error: Error) => process.stderr.write(`deputy gateway: ${error.message}\n`)
  const upstream = upstreamOf(opts, onError)

  let store: Store | undefined
  let audit: AuditHook
  if (options.db !== undefined) {
    store = openStore(options.db)
    await migrateToLatest(store)
    audit = chainAudit(createAuditLog(store, systemClock))
  } else {
    audit = jsonLineAudit((line) => process.stderr.write(line))
  }

  const approvals = approvalsOf(opts, issuer, store)

  // The resource names the real port, so `--port 0` needs the socket before the gateway exists.
  let gateway: Gateway | undefined
  const server = await serveFetch(
    (request: Request) => gateway?.fetch(request) ?? new Response('starting', { status: 503 }),
    { port, host },
  )
  const boundPort = server.port
  const resource = opts.resource ?? `http://localhost:${boundPort}/mcp`
  try {
    gateway = createGateway({
      resource,
      authorizationServers: [issuer],
      verifier: issuerJwtVerifier({
        issuer,
        audience: resource,
        ...(opts.jwksUri !== undefined && { jwksUri: opts.jwksUri }),
      }),
      upstream,
      rules,
      audit,
      auditFailure,
      ...(approvals !== undefined && { approvals }),
      onError,
    })
  } catch (error) {
    await server.drain()
    await store?.close()
    throw invalid((error as Error).message)
  }

  const stop = async () => {
    // Open SSE streams would hold the drain to its grace; the upstream's close ends them.
    await server.drain({ beforeWait: () => void gateway?.close() })
    await store?.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => void stop())
  process.once('SIGINT', () => void stop())

  const listening = server.url
  const scopes = scopesOf(rules)
  process.stderr.write(
    `${[
      `Deputy gateway at ${resource} (listening on ${listening})`,
      `  upstream:   ${opts.upstream ?? `stdio: ${opts.upstreamCommand}`}`,
      `  issuer:     ${issuer}`,
      `  metadata:   ${gateway.resourceMetadataUrl}`,
      `  rules:      ${opts.rules ?? '(none: any valid token may call every tool)'}${scopes.length > 0 ? ` — scopes ${scopes.join(' ')}` : ''}`,
      `  audit:      ${store ? `audit chain in ${store.location}` : 'JSON lines on stderr'}${auditFailure === 'continue' ? ' (a call that cannot be recorded still goes on)' : ''}`,
    ].join('\n')}\n`,
  )
}
