// MCP tool-call benchmark: the same MCP server (official SDK v2, one `echo` tool) called directly,
// through @deputy/mcp, and through Deputy's gateway; each in its own process on 127.0.0.1, loaded
// from another process, rounds interleaved. How to run it and how to read it: bench/README.md.
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SCOPE, toolCallBody, toolCallHeaders } from './lib/common.mjs'
import { startIssuer } from './lib/issuer.mjs'
import { verifyServer } from './lib/verify.mjs'

const env = process.env
const long = env.BENCH_LONG === '1'
const settings = {
  rounds: Number(env.BENCH_ROUNDS ?? 3),
  warmup: Number(env.BENCH_WARMUP ?? (long ? 5 : 2)),
  duration: Number(env.BENCH_DURATION ?? (long ? 15 : 5)),
  connections: Number(env.BENCH_CONNECTIONS ?? 32),
  latencyConcurrency: Number(env.BENCH_LATENCY_CONCURRENCY ?? 1),
  servers: (env.BENCH_SERVERS ?? 'direct,kit,gateway').split(','),
  scenarios: (env.BENCH_SCENARIOS ?? 'throughput,latency').split(','),
}
// The targets of issue 4 §5, stated for the kit; the gateway is held to the same numbers.
const TARGET = { addedP50Ms: 1, throughputRatio: 0.8 }
const LABELS = { direct: 'direct (no auth)', kit: '@deputy/mcp', gateway: 'deputy gateway' }
const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const children = new Set()
const problems = []

function stopAll() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(130))

/** Starts one server process and waits for its 'ready' (or 'unavailable') message. */
function startServer(name, extraEnv = {}) {
  return new Promise((resolve) => {
    const child = fork(here(`servers/${name}.mjs`), [], {
      env: { ...env, ...extraEnv, NODE_ENV: 'production' },
      execArgv: env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    children.add(child)
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
      if (env.BENCH_VERBOSE === '1') process.stderr.write(`[${name}] ${d}`)
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve({ name, error: 'did not start within 60 s' })
    }, 60_000)
    child.on('message', (m) => {
      clearTimeout(timer)
      if (m.type === 'ready')
        resolve({ name, ...m.info, pids: [child.pid, ...(m.info.pids ?? [])], child })
      else if (m.type === 'unavailable') resolve({ name, unavailable: m.message })
      else resolve({ name, error: m.message })
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({
        name,
        error: `exited with code ${code} before it was ready: ${stderr.trim().split('\n').at(-1) ?? ''}`,
      })
    })
  })
}

/** Total CPU time (all threads) of a process in µs, from /proc; undefined elsewhere. */
function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (USER_HZ = 100).
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}
const cpuOf = (pids) => {
  const each = pids.map(cpuMicros)
  return each.some((x) => x === undefined) ? undefined : each.reduce((a, b) => a + b, 0)
}

/** Runs one load process against a server; returns its measurement. */
function measure(script, job, server) {
  return new Promise((resolve, reject) => {
    const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.add(child)
    let cpuStart
    child.on('message', (m) => {
      if (m.type === 'measuring') cpuStart = cpuOf(server.cpuPids)
      else if (m.type === 'result') {
        const cpuEnd = cpuOf(server.cpuPids)
        const cpu =
          cpuStart !== undefined && cpuEnd !== undefined && m.requests > 0
            ? (cpuEnd - cpuStart) / m.requests
            : undefined
        resolve({ ...m, cpuPerRequest: cpu })
      } else if (m.type === 'error') reject(new Error(m.message))
    })
    child.on('exit', () => children.delete(child))
    child.send(job)
  })
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const fmt = (x, digits = 0) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits))
const range = (xs, digits = 0) =>
  xs.length === 0
    ? 'n/a'
    : `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`
const signed = (x, digits) => (x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${fmt(x, digits)}`)

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  return rows
    .map((r, ri) => {
      const line = r.map((cell, i) =>
        i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]),
      )
      return ri === 0
        ? `${line.join('  ')}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`
        : line.join('  ')
    })
    .join('\n')
}

/** Runs a scenario in interleaved rounds; returns results[server][round] (undefined: no run). */
async function scenario(title, servers, runOne) {
  const results = Object.fromEntries(servers.map((s) => [s.name, []]))
  for (let round = 0; round < settings.rounds; round++) {
    // Rotate the order each round so no server always runs first (or right after another).
    const order = servers.map((_, i) => servers[(i + round) % servers.length])
    for (const server of order) {
      if (server.error || server.unavailable) continue
      try {
        await verifyServer(server)
        const r = await runOne(server)
        await verifyServer(server)
        results[server.name][round] = r
        const digits = r.p50 < 10 ? 2 : 1
        process.stdout.write(
          `  ${title} round ${round + 1}/${settings.rounds} ${server.label.padEnd(18)} ${fmt(r.rps)} /s  p50 ${fmt(r.p50, digits)} ms  p99 ${fmt(r.p99, digits)} ms${r.non2xx || r.errors || r.timeouts ? `  non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts}${r.firstError ? ` (${r.firstError})` : ''}` : ''}\n`,
        )
        if (r.non2xx || r.errors || r.timeouts)
          problems.push(`${server.label}: failed requests in ${title}`)
      } catch (err) {
        server.error = `${title}: ${err.message}`
        problems.push(`${server.label}: ${server.error}`)
        process.stdout.write(`  ${title} ${server.label}: FAILED — ${err.message}\n`)
      }
    }
  }
  return results
}

function report(title, servers, results, digits) {
  const rows = [['server', 'req/s median (min–max)', 'p50 ms', 'p99 ms', 'CPU µs/req', 'runs']]
  for (const s of servers) {
    const rs = (results[s.name] ?? []).filter(Boolean)
    if (s.unavailable) rows.push([s.label, 'not available', '', '', '', '0'])
    else if (rs.length === 0)
      rows.push([s.label, `FAILED: ${s.error ?? 'no runs'}`, '', '', '', '0'])
    else
      rows.push([
        s.label,
        range(rs.map((r) => r.rps)),
        fmt(median(rs.map((r) => r.p50)), digits),
        fmt(median(rs.map((r) => r.p99)), digits),
        rs.every((r) => r.cpuPerRequest !== undefined)
          ? fmt(median(rs.map((r) => r.cpuPerRequest)))
          : 'n/a',
        String(rs.length),
      ])
  }
  console.log(`\n${title}\n${table(rows)}`)
}

/** Same-round comparisons with direct: throughput ratio and added p50, medians over rounds. */
function compare(results, server) {
  const a = results[server.name] ?? []
  const d = results.direct ?? []
  const rounds = a.map((r, i) => (r && d[i] ? [r, d[i]] : undefined)).filter(Boolean)
  return {
    ratios: rounds.map(([r, dr]) => r.rps / dr.rps),
    added: rounds.map(([r, dr]) => r.p50 - dr.p50),
  }
}

const nproc = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length
  } catch {
    return undefined
  }
})()
const cpuModel = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1]
  } catch {
    return undefined
  }
})()
console.log(
  `MCP tool-call benchmark — node ${process.version}, ${nproc ?? '?'} CPUs (${cpuModel ?? 'unknown'}), ${settings.rounds} rounds, ${settings.warmup} s warm-up + ${settings.duration} s measured; throughput: autocannon ${settings.connections} connections; latency: ${settings.latencyConcurrency} call(s) in flight`,
)

const issuer = await startIssuer()
const authEnv = { BENCH_ISSUER: issuer.issuer, BENCH_JWKS_URI: issuer.jwksUri }
const direct = settings.servers.includes('direct')
  ? await startServer('direct')
  : { name: 'direct', error: 'not started (BENCH_SERVERS)' }
const others = await Promise.all(
  settings.servers
    .filter((name) => name !== 'direct')
    .map((name) =>
      name === 'gateway' && !direct.url
        ? { name, error: 'needs the direct server as its upstream' }
        : startServer(name, { ...authEnv, BENCH_UPSTREAM: direct.url ?? '' }),
    ),
)
const servers = [direct, ...others].filter((s) => settings.servers.includes(s.name))
const byName = Object.fromEntries(servers.map((s) => [s.name, s]))
for (const s of servers) {
  s.label = LABELS[s.name] ?? s.name
  if (s.unavailable) {
    console.log(`  ${s.name}: not available — ${s.unavailable}`)
    continue
  }
  if (s.error) {
    problems.push(`${s.label}: did not start: ${s.error}`)
    console.log(`  ${s.label}: did not start — ${s.error}`)
    continue
  }
  // The gateway forwards to the direct server: its CPU per call is both processes'.
  s.cpuPids = s.name === 'gateway' ? [...s.pids, ...byName.direct.pids] : s.pids
  if (s.auth) {
    s.token = await issuer.mint(s.resource, { scope: SCOPE })
    s.wrongAudienceToken = await issuer.mint('http://127.0.0.1:9/elsewhere/mcp', { scope: SCOPE })
  }
  try {
    await verifyServer(s)
    console.log(
      `  ${s.label} at ${s.url}: tools/call verified${s.auth ? ` (Bearer, aud ${s.resource}, scope ${SCOPE}); no token 401, wrong audience 401` : ' (no auth)'}`,
    )
  } catch (err) {
    s.error = `verification failed: ${err.message}`
    problems.push(`${s.label}: ${s.error}`)
    console.log(`  ${s.label} at ${s.url}: VERIFICATION FAILED — ${err.message}`)
  }
}

const raw = { settings, node: process.version, nproc, cpuModel, throughput: {}, latency: {} }
const job = (server) => ({
  url: server.url,
  headers: toolCallHeaders(server.token),
  body: toolCallBody(),
  warmup: settings.warmup,
  duration: settings.duration,
})

if (settings.scenarios.includes('throughput')) {
  console.log(
    `\nthroughput: autocannon, POST tools/call (echo), ${settings.connections} connections`,
  )
  raw.throughput = await scenario('throughput', servers, (server) =>
    measure(
      here('../token-endpoint/load/autocannon.mjs'),
      { ...job(server), connections: settings.connections },
      server,
    ),
  )
  report(
    `throughput (${settings.connections} connections, ${settings.duration} s per run; autocannon latency in whole ms)`,
    servers,
    raw.throughput,
    0,
  )
}
if (settings.scenarios.includes('latency')) {
  console.log(
    `\nlatency: ${settings.latencyConcurrency} tools/call in flight, each timed (hrtime), keep-alive`,
  )
  raw.latency = await scenario('latency', servers, (server) =>
    measure(
      here('load/latency.mjs'),
      { ...job(server), concurrency: settings.latencyConcurrency },
      server,
    ),
  )
  report(
    `latency (${settings.latencyConcurrency} in flight, ${settings.duration} s per run)`,
    servers,
    raw.latency,
    3,
  )
}

// Against direct, same round, then the median over rounds.
const rows = [
  [
    'vs direct (same round)',
    'throughput ratio',
    'added p50 ms, 1 in flight',
    `added p50 ms, ${settings.connections} conn.`,
    'verdict',
  ],
]
const verdicts = []
for (const s of servers.filter((x) => x.name !== 'direct')) {
  if (s.unavailable) {
    rows.push([`${s.label} / direct`, 'not available', '', '', ''])
    continue
  }
  const t = compare(raw.throughput, s)
  const l = compare(raw.latency, s)
  const ratio = t.ratios.length ? median(t.ratios) : undefined
  const added = l.added.length ? median(l.added) : undefined
  const throughputOk = ratio === undefined ? undefined : ratio >= TARGET.throughputRatio
  const latencyOk = added === undefined ? undefined : added <= TARGET.addedP50Ms
  const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS')
  rows.push([
    `${s.label} / direct`,
    t.ratios.length ? range(t.ratios, 2) : 'n/a',
    l.added.length
      ? `${signed(added, 3)} (${signed(Math.min(...l.added), 3)}…${signed(Math.max(...l.added), 3)})`
      : 'n/a',
    t.added.length ? signed(median(t.added), 0) : 'n/a',
    `p50 ${verdict(latencyOk)}, throughput ${verdict(throughputOk)}`,
  ])
  verdicts.push({ server: s.name, ratio, added, latencyOk, throughputOk })
}
console.log(`\n${table(rows)}`)
console.log(
  `\ntargets (issue 4 §5, stated for @deputy/mcp; the gateway is held to the same): at most +${TARGET.addedP50Ms} ms at p50 (single calls, the latency scenario) and at least ${TARGET.throughputRatio * 100}% of direct req/s (${settings.connections} connections).`,
)
for (const s of servers.filter((x) => x.unavailable)) console.log(`${s.name}: not available`)

if (env.BENCH_JSON) {
  writeFileSync(env.BENCH_JSON, JSON.stringify({ ...raw, verdicts }, null, 2))
  console.log(`\nraw results written to ${env.BENCH_JSON}`)
}
stopAll()
await issuer.close()
if (problems.length > 0) {
  console.log(
    `\nNOT CLEAN (${problems.length}):\n${[...new Set(problems)].map((p) => `  - ${p}`).join('\n')}`,
  )
  process.exitCode = 1
}
