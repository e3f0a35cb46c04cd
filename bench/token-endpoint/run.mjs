// Token endpoint benchmark: Deputy against node-oidc-provider and a bare hono + jose route,
// each in its own process on 127.0.0.1, loaded from another process, rounds interleaved.
// How to run it and how to read it: bench/README.md.
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { basicAuth, TOKEN_BODY } from './lib/common.mjs'
import { client } from './lib/flow.mjs'
import { verifyAccessToken, verifyClientCredentials } from './lib/verify.mjs'

const env = process.env
const long = env.BENCH_LONG === '1'
const settings = {
  rounds: Number(env.BENCH_ROUNDS ?? 3),
  warmup: Number(env.BENCH_WARMUP ?? (long ? 5 : 2)),
  duration: Number(env.BENCH_DURATION ?? (long ? 15 : 5)),
  connections: Number(env.BENCH_CONNECTIONS ?? 32),
  flowConcurrency: Number(env.BENCH_FLOW_CONCURRENCY ?? 8),
  servers: (env.BENCH_SERVERS ?? 'bare,oidc,deputy').split(','),
  scenarios: (env.BENCH_SCENARIOS ?? 'token,flows').split(','),
}
const SERVER_SCRIPTS = { bare: 'bare.mjs', oidc: 'oidc-provider.mjs', deputy: 'deputy.mjs' }
const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const children = new Set()
const problems = []

function stopAll() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(130))

/** Starts one server process and waits for its 'ready' message. */
function startServer(name) {
  return new Promise((resolve) => {
    const child = fork(here(`servers/${SERVER_SCRIPTS[name]}`), [], {
      env: { ...env, NODE_ENV: 'production' },
      // BENCH_PROFILE=<dir>: a V8 CPU profile of each server's main thread, written at exit.
      execArgv: env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    children.add(child)
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve({ name, error: 'did not start within 60 s' })
    }, 60_000)
    child.on('message', (m) => {
      clearTimeout(timer)
      if (m.type === 'ready') resolve({ name, ...m.info, pid: child.pid, child })
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

/** Runs one load process (autocannon or flows) against a server; returns its measurement. */
function measure(script, job, server) {
  return new Promise((resolve, reject) => {
    const child = fork(here(`load/${script}`), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    children.add(child)
    let cpuStart
    child.on('message', (m) => {
      if (m.type === 'measuring') cpuStart = cpuMicros(server.pid)
      else if (m.type === 'result') {
        const cpuEnd = cpuMicros(server.pid)
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

/** One full authorization-code flow, its access token verified (signature, typ, iss, aud, sub). */
async function verifyFlow(server) {
  const c = client(server)
  await c.signIn()
  const body = await c.flow()
  await verifyAccessToken(server, body.access_token)
  // A second flow reuses the session and the remembered consent, as the measured ones do.
  const again = await c.flow()
  await verifyAccessToken(server, again.access_token)
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

/** Runs a scenario in interleaved rounds; returns results[server][round]. */
async function scenario(title, servers, runOne) {
  const results = Object.fromEntries(servers.map((s) => [s.name, []]))
  for (let round = 0; round < settings.rounds; round++) {
    // Rotate the order each round so no server always runs first (or right after another).
    const order = servers.map((_, i) => servers[(i + round) % servers.length])
    for (const server of order) {
      if (server.error) continue
      try {
        const r = await runOne(server)
        results[server.name].push(r)
        process.stdout.write(
          `  ${title} round ${round + 1}/${settings.rounds} ${server.label.padEnd(20)} ${fmt(r.rps)} /s  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms${r.non2xx || r.errors || r.timeouts ? `  non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts}${r.firstError ? ` (${r.firstError})` : ''}` : ''}\n`,
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

function report(title, unit, servers, results, pairs) {
  const rows = [
    [
      'server',
      `${unit === 'flow' ? 'flows' : unit}/s median (min–max)`,
      'p50 ms',
      'p99 ms',
      `CPU µs/${unit}`,
      'runs',
    ],
  ]
  for (const s of servers) {
    const rs = results[s.name] ?? []
    if (rs.length === 0) {
      rows.push([s.label, `FAILED: ${s.error ?? 'no runs'}`, '', '', '', '0'])
      continue
    }
    rows.push([
      s.label,
      range(rs.map((r) => r.rps)),
      fmt(median(rs.map((r) => r.p50)), 1),
      fmt(median(rs.map((r) => r.p99)), 1),
      rs.every((r) => r.cpuPerRequest !== undefined)
        ? fmt(median(rs.map((r) => r.cpuPerRequest)))
        : 'n/a',
      String(rs.length),
    ])
  }
  console.log(`\n${title}\n${table(rows)}`)
  const ratioRows = [['ratio (same round)', 'median (min–max)']]
  for (const [a, b] of pairs) {
    const ra = results[a.name] ?? []
    const rb = results[b.name] ?? []
    const n = Math.min(ra.length, rb.length)
    const ratios = Array.from({ length: n }, (_, i) => ra[i].rps / rb[i].rps)
    ratioRows.push([`${a.label} / ${b.label}`, n > 0 ? range(ratios, 2) : 'n/a'])
  }
  console.log(`\n${table(ratioRows)}`)
}

console.log(
  `Token endpoint benchmark — node ${process.version}, ${settings.rounds} rounds, ${settings.warmup} s warm-up + ${settings.duration} s measured, ${settings.connections} connections (flows: ${settings.flowConcurrency} in flight)`,
)
const servers = await Promise.all(settings.servers.map(startServer))
for (const s of servers) {
  s.label ??= { bare: 'hono + jose (bare)', oidc: 'oidc-provider', deputy: 'Deputy' }[s.name]
  if (s.error) {
    problems.push(`${s.label}: did not start: ${s.error}`)
    console.log(`  ${s.label}: did not start — ${s.error}`)
    continue
  }
  try {
    await verifyClientCredentials(s)
    console.log(
      `  ${s.label} at ${s.url}: client_credentials verified (JWT, typ at+jwt, iss, aud; wrong secret 401 invalid_client)`,
    )
  } catch (err) {
    s.error = `verification failed: ${err.message}`
    problems.push(`${s.label}: ${s.error}`)
    console.log(`  ${s.label} at ${s.url}: VERIFICATION FAILED — ${err.message}`)
  }
}

const byName = Object.fromEntries(servers.map((s) => [s.name, s]))
const raw = { settings, node: process.version, token: {}, flows: {} }

if (settings.scenarios.includes('token')) {
  console.log('\nclient_credentials: POST /token, Basic auth, resource indicator')
  raw.token = await scenario('token', servers, async (server) => {
    await verifyClientCredentials(server)
    const r = await measure(
      'autocannon.mjs',
      {
        url: new URL(server.tokenPath, server.url).href,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basicAuth(server.clientId, server.clientSecret),
        },
        body: TOKEN_BODY,
        connections: settings.connections,
        warmup: settings.warmup,
        duration: settings.duration,
      },
      server,
    )
    await verifyClientCredentials(server)
    return r
  })
  const pairs = [
    ['deputy', 'bare'],
    ['deputy', 'oidc'],
    ['oidc', 'bare'],
  ]
    .filter(([a, b]) => byName[a] && byName[b])
    .map(([a, b]) => [byName[a], byName[b]])
  report(
    `client_credentials tokens (${settings.connections} connections, ${settings.duration} s per run)`,
    'req',
    servers,
    raw.token,
    pairs,
  )
}

if (settings.scenarios.includes('flows')) {
  const flowServers = servers.filter((s) => s.name !== 'bare')
  console.log(
    '\nauthorization_code: authorize (signed in, consent remembered) -> code -> token, PKCE S256',
  )
  for (const s of flowServers) {
    if (s.error) continue
    try {
      await verifyFlow(s)
      console.log(`  ${s.label}: one flow verified (code, token, JWT typ at+jwt, iss, aud)`)
    } catch (err) {
      s.flowError = `flow verification failed: ${err.message}`
      problems.push(`${s.label}: ${s.flowError}`)
      console.log(`  ${s.label}: FLOW VERIFICATION FAILED — ${err.message}`)
    }
  }
  const ready = flowServers.map((s) => (s.flowError ? { ...s, error: s.error ?? s.flowError } : s))
  raw.flows = await scenario('flows', ready, async (server) => {
    const r = await measure(
      'flows.mjs',
      {
        info: { ...server, child: undefined },
        concurrency: settings.flowConcurrency,
        warmup: settings.warmup,
        duration: settings.duration,
      },
      server,
    )
    await verifyFlow(server)
    return r
  })
  const pairs = byName.deputy && byName.oidc ? [[byName.deputy, byName.oidc]] : []
  report(
    `authorization-code flows (${settings.flowConcurrency} in flight, ${settings.duration} s per run)`,
    'flow',
    ready,
    raw.flows,
    pairs,
  )
}

if (env.BENCH_JSON) {
  writeFileSync(env.BENCH_JSON, JSON.stringify(raw, null, 2))
  console.log(`\nraw results written to ${env.BENCH_JSON}`)
}
stopAll()
if (problems.length > 0) {
  console.log(
    `\nNOT CLEAN (${problems.length}):\n${[...new Set(problems)].map((p) => `  - ${p}`).join('\n')}`,
  )
  process.exitCode = 1
}
