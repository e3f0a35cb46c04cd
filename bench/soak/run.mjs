// Soak: one Deputy (`deputy start`, the built CLI, SQLite in a temporary folder) under compressed
// load patterns in alternating phases (bursts and idle), its resident memory sampled from /proc
// every few seconds. It prints a table and a verdict on whether memory stays flat; it is a
// measurement, not a test: exit 0 unless the server crashed. How to run and read it:
// bench/README.md.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmt, machineLine, table } from '../lib/runner.mjs'
import { freePort, RESOURCE, SCOPE } from '../token-endpoint/lib/common.mjs'
import { operations } from './load.mjs'

const env = process.env
const settings = {
  minutes: Number(env.SOAK_MINUTES ?? 3),
  phaseSeconds: Number(env.SOAK_PHASE_SECONDS ?? 5),
  sampleSeconds: Number(env.SOAK_SAMPLE_SECONDS ?? 1),
  concurrency: Number(env.SOAK_CONCURRENCY ?? 8),
}
/** The phases, in order, repeated until the time is up; each names the operations it mixes. */
const PHASES = [
  { name: 'tokens', ops: ['token', 'introspect'] },
  { name: 'idle', ops: [] },
  { name: 'abuse', ops: ['failedLogin', 'badInput'] },
  { name: 'register', ops: ['register', 'token'] },
  { name: 'idle', ops: [] },
  { name: 'mixed', ops: ['token', 'introspect', 'failedLogin', 'badInput', 'register'] },
]
const FLAT_BELOW = 0.1
const BIN = fileURLToPath(new URL('../../packages/server/bin/deputy.js', import.meta.url))
const DIST = fileURLToPath(new URL('../../packages/server/dist/cli/main.js', import.meta.url))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resident memory of a process in MB, from /proc/<pid>/status; undefined elsewhere. */
function rssMb(pid) {
  try {
    const kb = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m)?.[1]
    return kb === undefined ? undefined : Number(kb) / 1024
  } catch {
    return undefined
  }
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length
  const mx = points.reduce((a, p) => a + p.x, 0) / n
  const my = points.reduce((a, p) => a + p.y, 0) / n
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0)
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0)
  return { slope: sxx === 0 ? 0 : sxy / sxx, mx, my }
}

if (!existsSync(DIST)) {
  console.error(`Deputy is not built (${DIST} missing): run npm run build`)
  process.exit(1)
}

const dir = mkdtempSync(join(tmpdir(), 'deputy-soak-'))
const port = await freePort()
const unlimited = '1000000000'
const serverEnv = {
  ...env,
  NODE_ENV: 'production',
  DEPUTY_MODE: 'development',
  DEPUTY_DATA_DIR: dir,
  DEPUTY_MASTER_KEY: randomBytes(32).toString('base64url'),
  DEPUTY_LOG_LEVEL: env.SOAK_DEPUTY_LOG_LEVEL ?? 'warn',
  // Every limit on (its bookkeeping is part of what is soaked) but out of reach of one client.
  DEPUTY_TOKEN_RATE_LIMIT_PER_CLIENT: unlimited,
  DEPUTY_TOKEN_RATE_LIMIT_PER_ADDRESS: unlimited,
  DEPUTY_REGISTRATION_RATE_LIMIT: unlimited,
  DEPUTY_SIGN_IN_RATE_LIMIT: unlimited,
  DEPUTY_LOGIN_MAX_FAILURES_PER_ADDRESS: unlimited,
  DEPUTY_AUTHORIZATION_REQUEST_RATE_LIMIT: unlimited,
}
const cli = (...args) =>
  JSON.parse(execFileSync(process.execPath, [BIN, ...args, '--json'], { env: serverEnv }))

cli('migrate')
cli('resources', 'add', RESOURCE, '--name', 'Soak MCP server', '--scope', `${SCOPE}=Read`)
const created = cli(
  'clients',
  'add',
  '--name',
  'soak client_credentials',
  '--grant-type',
  'client_credentials',
  '--scope',
  SCOPE,
)

const server = spawn(
  process.execPath,
  [BIN, 'start', '--port', String(port), '--host', '127.0.0.1'],
  { env: serverEnv, stdio: ['ignore', 'ignore', 'pipe'] },
)
let stderr = ''
server.stderr.on('data', (d) => {
  stderr = (stderr + d).slice(-4000)
})
let exited
server.on('exit', (code, signal) => {
  exited = { code, signal }
})
let stopping = false
const cleanup = () => {
  if (server.exitCode === null) server.kill('SIGTERM')
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

const info = {
  url: `http://127.0.0.1:${port}`,
  clientId: created.client_id,
  clientSecret: created.client_secret,
}
for (let i = 0; ; i++) {
  if (exited) {
    console.error(`deputy start exited (${exited.code ?? exited.signal}): ${stderr.trim()}`)
    process.exit(1)
  }
  try {
    const res = await fetch(`${info.url}/.well-known/oauth-authorization-server`)
    if (res.status === 200) break
  } catch {}
  if (i > 600) {
    console.error('deputy start did not answer within 60 s')
    process.exit(1)
  }
  await sleep(100)
}

const ops = operations(info)
// Every operation once, checked, before the soak starts: a broken setup is not a soak.
for (const name of Object.keys(ops)) {
  const r = await ops[name]()
  if (!r.ok) {
    console.error(`${name}: unexpected HTTP ${r.status} before the soak started`)
    process.exit(1)
  }
}

const totalMs = settings.minutes * 60_000
const phaseMs = settings.phaseSeconds * 1000
console.log(
  `Soak — ${machineLine()}, ${settings.minutes} min, phases of ${settings.phaseSeconds} s (${PHASES.map((p) => p.name).join(' → ')}, repeated), ${settings.concurrency} requests in flight in a burst, RSS of deputy start (pid ${server.pid}) every ${settings.sampleSeconds} s`,
)

const started = Date.now()
const phaseCount = Math.ceil(totalMs / phaseMs)
const phaseAt = (t) => PHASES[Math.floor(t / phaseMs) % PHASES.length]
/** One row per phase run: its requests, unexpected answers and the RSS samples taken in it. */
const phases = Array.from({ length: phaseCount }, (_, i) => ({
  end: Math.min(totalMs, (i + 1) * phaseMs),
  name: PHASES[i % PHASES.length].name,
  requests: 0,
  unexpected: 0,
  rss: [],
}))
const phaseRun = (t) => phases[Math.min(phaseCount - 1, Math.floor(t / phaseMs))]
const byOp = Object.fromEntries(Object.keys(ops).map((k) => [k, { requests: 0, unexpected: 0 }]))
let firstUnexpected

async function worker() {
  while (!stopping && !exited && Date.now() - started < totalMs) {
    const t = Date.now() - started
    const phase = phaseAt(t)
    if (phase.ops.length === 0) {
      await sleep(Math.min(200, phaseMs - (t % phaseMs)))
      continue
    }
    const run = phaseRun(t)
    const name = phase.ops[Math.floor(Math.random() * phase.ops.length)]
    let ok
    let detail
    try {
      const r = await ops[name]()
      ok = r.ok
      detail = `HTTP ${r.status}`
    } catch (err) {
      ok = false
      detail = err.cause?.code ?? err.message
    }
    run.requests++
    byOp[name].requests++
    if (!ok) {
      run.unexpected++
      byOp[name].unexpected++
      firstUnexpected ??= `${name}: ${detail}`
    }
  }
}

/** RSS samples on a fixed schedule (no drift): the first at 0, then every `sampleSeconds`. */
const samples = []
async function sampler() {
  const every = settings.sampleSeconds * 1000
  for (let k = 0; k * every <= totalMs && !exited; k++) {
    await sleep(Math.max(0, started + k * every - Date.now()))
    const t = Date.now() - started
    const rss = rssMb(server.pid)
    if (rss === undefined) continue
    samples.push({ t, rss })
    // A sample on a phase's last instant belongs to the phase it ends.
    phaseRun(Math.max(0, t - 1)).rss.push(rss)
  }
}
await Promise.all([sampler(), ...Array.from({ length: settings.concurrency }, worker)])

const rows = [['time s', 'phase', 'requests', 'unexpected', 'RSS MB', 'peak MB']]
for (const p of phases) {
  rows.push([
    fmt(p.end / 1000),
    p.name,
    String(p.requests),
    String(p.unexpected),
    fmt(p.rss.at(-1), 1),
    fmt(p.rss.length > 0 ? Math.max(...p.rss) : undefined, 1),
  ])
}
console.log(`\n${table(rows)}`)

const opRows = [['operation', 'requests', 'unexpected']]
for (const [name, c] of Object.entries(byOp)) {
  opRows.push([name, String(c.requests), String(c.unexpected)])
}
console.log(`\n${table(opRows)}`)
if (firstUnexpected) console.log(`first unexpected answer: ${firstUnexpected}`)

const crashed = exited !== undefined
if (crashed) {
  console.log(
    `\nCRASHED: deputy start exited (${exited.code ?? exited.signal}) during the soak: ${stderr.trim().split('\n').at(-1) ?? ''}`,
  )
} else {
  const measured = samples
  const half = measured.filter((s) => s.t >= totalMs / 2)
  if (half.length < 2) {
    console.log('\nverdict: n/a (too few RSS samples in the second half; is /proc there?)')
  } else {
    const fit = slope(half.map((s) => ({ x: s.t / 60_000, y: s.rss })))
    const spanMin = (half.at(-1).t - half[0].t) / 60_000
    const startMb = fit.my - fit.slope * (fit.mx - half[0].t / 60_000)
    const growth = (fit.slope * spanMin) / startMb
    const peak = Math.max(...measured.map((s) => s.rss))
    console.log(
      `\nRSS: ${fmt(measured[0].rss, 1)} MB at the start, peak ${fmt(peak, 1)} MB, ${fmt(measured.at(-1).rss, 1)} MB at the end`,
    )
    console.log(
      `second half (${half.length} samples, ${fmt(spanMin, 1)} min): slope ${fmt(fit.slope, 2)} MB/min, growth ${fmt(growth * 100, 1)}% of ${fmt(startMb, 1)} MB`,
    )
    console.log(
      `verdict: ${growth < FLAT_BELOW ? 'flat' : 'GROWING'} (flat: the second half grows less than ${FLAT_BELOW * 100}%)`,
    )
  }
}

stopping = true
if (server.exitCode === null && !crashed) {
  const done = new Promise((resolve) => server.once('exit', resolve))
  server.kill('SIGTERM')
  await Promise.race([done, sleep(15_000)])
}
rmSync(dir, { recursive: true, force: true })
process.exitCode = crashed ? 1 : 0
