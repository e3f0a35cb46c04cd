// (c) The direct server (a) behind Deputy's MCP gateway: `deputy gateway --upstream <direct> …`,
// run from the built server (packages/server/dist). This process starts the gateway as its own
// child, waits until it answers with a Bearer challenge, and reports the gateway's pid so its CPU
// is measured (not this wrapper's). Without a built gateway it reports "not available" and nothing
// is measured.
//
// BENCH_GATEWAY_ARGS replaces the command line after `deputy`; {upstream}, {port}, {resource},
// {issuer}, {jwksUri}, {scope} and {rules} (a rules file: `echo` needs the scope) are filled in.
import { spawn, spawnSync } from 'node:child_process'
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  announce,
  failStart,
  freePort,
  SCOPE,
  TOOL,
  toolCallBody,
  toolCallHeaders,
} from '../lib/common.mjs'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const cli = `${root}packages/server/bin/deputy.js`
const DEFAULT_ARGS =
  'gateway --upstream {upstream} --host 127.0.0.1 --port {port} --resource {resource} --issuer {issuer} --jwks-uri {jwksUri} --rules {rules}'

/** Tells the parent there is no gateway to measure, then exits once the message is out. */
function unavailable(message) {
  if (!process.send) process.exit(0)
  process.send({ type: 'unavailable', message }, () => process.exit(0))
  return new Promise(() => {})
}

try {
  const { BENCH_UPSTREAM: upstream, BENCH_ISSUER: issuer, BENCH_JWKS_URI: jwksUri } = process.env
  if (!upstream || !issuer || !jwksUri)
    throw new Error('BENCH_UPSTREAM, BENCH_ISSUER and BENCH_JWKS_URI are required')
  if (!existsSync(`${root}packages/server/src/gateway`))
    await unavailable('packages/server has no gateway yet (no src/gateway)')
  // commander prints the top-level help for an unknown command, with exit code 0.
  const help = spawnSync(process.execPath, [cli, 'gateway', '--help'], { encoding: 'utf8' })
  if (!/^Usage: deputy gateway\b/m.test(help.stdout ?? ''))
    await unavailable('the built CLI has no `deputy gateway` command yet (npm run build)')

  const port = await freePort()
  const resource = `http://127.0.0.1:${port}/mcp`
  const dir = mkdtempSync(join(tmpdir(), 'deputy-bench-gateway-'))
  const rules = join(dir, 'rules.json')
  writeFileSync(rules, JSON.stringify({ tools: { [TOOL]: { scopes: [SCOPE] } } }))
  const values = { upstream, port: String(port), resource, issuer, jwksUri, scope: SCOPE, rules }
  const args = (process.env.BENCH_GATEWAY_ARGS ?? DEFAULT_ARGS)
    .split(/\s+/)
    .filter(Boolean)
    .map((arg) => arg.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? `{${key}}`))
  // BENCH_PROFILE (see bench/lib/runner.mjs) reaches the gateway itself, not only this wrapper:
  // the gateway's profile is the one worth reading (its upstream, the direct server, writes its own).
  const profile = process.env.BENCH_PROFILE
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${process.env.BENCH_PROFILE}`,
        `--cpu-prof-name=gateway.${process.pid}.cpuprofile`,
      ]
    : []
  // Without --db the gateway writes an audit line per call to stderr. It goes to a file, as
  // `2>>audit.log` would: a pipe needs a reader, and this wrapper's reading (counted with the
  // gateway's CPU) and waking it for every write would be charged to the gateway.
  const stderrPath = join(dir, 'gateway.stderr')
  const stderrFd = openSync(stderrPath, 'a')
  const gateway = spawn(process.execPath, [...profile, cli, ...args], {
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', stderrFd],
  })
  closeSync(stderrFd)
  /** The last lines the gateway wrote, for error messages. */
  const stderrTail = () => {
    const fd = openSync(stderrPath, 'r')
    try {
      const size = fstatSync(fd).size
      const tail = Buffer.alloc(Math.min(size, 4096))
      readSync(fd, tail, 0, tail.length, size - tail.length)
      return tail.toString('utf8')
    } finally {
      closeSync(fd)
    }
  }
  let exited
  gateway.on('exit', (code) => {
    exited = code
  })

  // Ready when a call without a token gets the gateway's Bearer challenge.
  const deadline = Date.now() + 30_000
  for (;;) {
    if (exited !== undefined)
      throw new Error(
        `deputy ${args.join(' ')} exited with code ${exited}: ${stderrTail().trim().split('\n').slice(-3).join(' | ')}`,
      )
    try {
      const response = await fetch(resource, {
        method: 'POST',
        headers: toolCallHeaders(),
        body: toolCallBody(),
      })
      await response.arrayBuffer()
      if (response.status === 401) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`the gateway did not answer 401 at ${resource} within 30 s`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  announce({ url: resource, resource, auth: true, pids: [gateway.pid] }, async () => {
    gateway.kill('SIGTERM')
    await new Promise((resolve) =>
      exited !== undefined ? resolve() : gateway.once('exit', resolve),
    )
    rmSync(dir, { recursive: true, force: true })
  })
} catch (err) {
  failStart(err)
}
