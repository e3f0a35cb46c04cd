// Approvals benchmark (issue 11): CIBA polls per second at /token with 1,000 pending requests,
// and the latency from an operator's decision to the client holding its token, poll and ping
// mode, with the server's CPU per operation beside each. Deputy runs in its own process
// (server.mjs), the poll load in another (load.mjs). How to run it and read it: bench/README.md.
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { basicAuth } from '../token-endpoint/lib/common.mjs'

const env = process.env
const long = env.BENCH_LONG === '1'
const settings = {
  rounds: Number(env.BENCH_ROUNDS ?? 3),
  warmup: Number(env.BENCH_WARMUP ?? (long ? 5 : 2)),
  duration: Number(env.BENCH_DURATION ?? (long ? 15 : 5)),
  connections: Number(env.BENCH_CONNECTIONS ?? 16),
  samples: Number(env.BENCH_SAMPLES ?? (long ? 1000 : 200)),
  pending: Number(env.BENCH_PENDING ?? 1000),
  scenarios: (env.BENCH_SCENARIOS ?? 'polls,latency').split(','),
}
const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const children = new Set()
const problems = []
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
})
process.on('SIGINT', () => process.exit(130))

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

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
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

// Ping mode's notification endpoint: the runner, on loopback. Each ping resolves its waiter.
const pingWaiters = new Map()
const notifications = createServer((req, res) => {
  let body = ''
  req.on('data', (chunk) => {
    body += chunk
  })
  req.on('end', () => {
    res.writeHead(204).end()
    try {
      const { auth_req_id } = JSON.parse(body)
      pingWaiters.get(auth_req_id)?.(req.headers.authorization)
    } catch {
      problems.push('a ping without a JSON body')
    }
  })
})
await new Promise((resolve) => notifications.listen(0, '127.0.0.1', resolve))
const notifyUrl = `http://127.0.0.1:${notifications.address().port}/ciba`

/** Starts Deputy with its pending requests and waits for its 'ready' message. */
function startServer() {
  return new Promise((resolve, reject) => {
    const child = fork(here('server.mjs'), [], {
      env: { ...env, NODE_ENV: 'production', BENCH_NOTIFY_URL: notifyUrl },
      execArgv: env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    children.add(child)
    child.once('message', (m) => {
      if (m.type === 'ready') resolve({ ...m.info, pid: child.pid, child })
      else reject(new Error(m.message))
    })
    child.once('exit', (code) => reject(new Error(`the server exited with code ${code}`)))
  })
}

const server = await startServer()
const pollerAuth = basicAuth(server.poller.clientId, server.poller.clientSecret)
const pingedAuth = basicAuth(server.pinged.clientId, server.pinged.clientSecret)

let seq = 0
/** A fresh pending request of the poller (interval 0), made by the server process. */
function freshPending() {
  const mine = ++seq
  return new Promise((resolve) => {
    const onMessage = (m) => {
      if (m.type === 'pending' && m.seq === mine) {
        server.child.off('message', onMessage)
        resolve(m)
      }
    }
    server.child.on('message', onMessage)
    server.child.send({ type: 'pending', seq: mine })
  })
}

async function post(path, authorization, params) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams(params),
  })
  return { status: res.status, body: await res.json() }
}
const poll = (authReqId, authorization = pollerAuth) =>
  post('/token', authorization, {
    grant_type: 'urn:openid:params:grant-type:ciba',
    auth_req_id: authReqId,
  })
async function approve(id) {
  const res = await fetch(`${server.url}/admin/api/approvals/${id}/approve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminKey}` },
  })
  if (res.status !== 200) throw new Error(`approve answered ${res.status}: ${await res.text()}`)
  await res.arrayBuffer()
}

/** What every measurement stands on: pending is pending, an approval yields one token. */
async function check(when) {
  const [first] = server.background
  const pending = await poll(first)
  if (pending.body.error !== 'authorization_pending')
    problems.push(`${when}: a pending request answered ${JSON.stringify(pending.body)}`)
  const fresh = await freshPending()
  await approve(fresh.id)
  const issued = await poll(fresh.authReqId)
  if (issued.status !== 200 || issued.body.token_type !== 'Bearer')
    problems.push(`${when}: an approved request answered ${JSON.stringify(issued.body)}`)
  const again = await poll(fresh.authReqId)
  if (again.body.error !== 'invalid_grant')
    problems.push(`${when}: an approval was used twice (${JSON.stringify(again.body)})`)
  const wrong = await poll(first, basicAuth(server.poller.clientId, 'wrong'))
  if (wrong.status !== 401) problems.push(`${when}: a wrong secret answered ${wrong.status}`)
}

/** One poll run: autocannon in its own process; the server's CPU during the measured window. */
function measurePolls() {
  return new Promise((resolve, reject) => {
    const child = fork(here('load.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.add(child)
    let cpuStart
    child.on('message', (m) => {
      if (m.type === 'measuring') cpuStart = cpuMicros(server.pid)
      else if (m.type === 'result') {
        const cpuEnd = cpuMicros(server.pid)
        resolve({
          ...m,
          cpuPerPoll:
            cpuStart !== undefined && cpuEnd !== undefined && m.requests > 0
              ? (cpuEnd - cpuStart) / m.requests
              : undefined,
        })
      } else if (m.type === 'error') reject(new Error(m.message))
    })
    child.on('exit', () => children.delete(child))
    child.send({
      url: server.url,
      authorization: pollerAuth,
      authReqIds: server.background,
      connections: settings.connections,
      warmup: settings.warmup,
      duration: settings.duration,
    })
  })
}

/**
 * Poll mode: a client polling back to back (interval 0) while the operator approves through the
 * admin API; from the approve call until the client holds the token.
 */
async function decisionToTokenPoll() {
  const fresh = await freshPending()
  let firstPoll
  const polled = new Promise((resolve) => {
    firstPoll = resolve
  })
  const poller = (async () => {
    for (;;) {
      const answer = await poll(fresh.authReqId)
      firstPoll()
      if (answer.status === 200) return process.hrtime.bigint()
      if (answer.body.error !== 'authorization_pending')
        throw new Error(`poll answered ${JSON.stringify(answer.body)}`)
    }
  })()
  await polled
  const t0 = process.hrtime.bigint()
  await approve(fresh.id)
  const t1 = await poller
  return Number(t1 - t0) / 1e6
}

/**
 * Ping mode: asked at /bc-authorize; from the approve call until Deputy has pinged the client and
 * the client, on the ping, has fetched its token.
 */
async function decisionToTokenPing() {
  const token = `ping-${++seq}`
  const asked = await post('/bc-authorize', pingedAuth, {
    scope: 'openid stock:trade',
    login_hint: server.person,
    client_notification_token: token,
  })
  if (asked.status !== 200) throw new Error(`bc-authorize answered ${JSON.stringify(asked.body)}`)
  const authReqId = asked.body.auth_req_id
  const listed = await fetch(
    `${server.url}/admin/api/approvals?status=pending&client=${encodeURIComponent(server.pinged.clientId)}&limit=1`,
    { headers: { authorization: `Bearer ${server.adminKey}` } },
  )
  const [request] = (await listed.json()).approvals
  const pinged = new Promise((resolve) => pingWaiters.set(authReqId, resolve))
  const t0 = process.hrtime.bigint()
  await approve(request.id)
  const bearer = await pinged
  pingWaiters.delete(authReqId)
  if (bearer !== `Bearer ${token}`) throw new Error(`the ping carried ${bearer}`)
  const issued = await poll(authReqId, pingedAuth)
  const t1 = process.hrtime.bigint()
  if (issued.status !== 200) throw new Error(`token answered ${JSON.stringify(issued.body)}`)
  return Number(t1 - t0) / 1e6
}

async function measureLatency(fn) {
  for (let i = 0; i < Math.min(20, settings.samples); i++) await fn()
  const ms = []
  const cpuStart = cpuMicros(server.pid)
  for (let i = 0; i < settings.samples; i++) ms.push(await fn())
  const cpuEnd = cpuMicros(server.pid)
  ms.sort((a, b) => a - b)
  return {
    p50: percentile(ms, 0.5),
    p99: percentile(ms, 0.99),
    cpuPerDecision:
      cpuStart !== undefined && cpuEnd !== undefined
        ? (cpuEnd - cpuStart) / settings.samples
        : undefined,
  }
}

let cpuModel
try {
  cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1]
} catch {}
process.stdout.write(
  `Approvals benchmark — node ${process.version}, ${(await import('node:os')).availableParallelism()} CPUs${cpuModel ? ` (${cpuModel})` : ''}, ${settings.pending} pending requests, ${settings.rounds} rounds of ${settings.warmup} s warm-up + ${settings.duration} s polls at ${settings.connections} connections, ${settings.samples} decisions per mode\n\n`,
)

const raw = { settings, node: process.version, polls: [], latency: {} }
await check('before')
if (settings.scenarios.includes('polls')) {
  for (let round = 0; round < settings.rounds; round++) {
    const r = await measurePolls()
    const unexpected = Object.entries(r.statusCodes).filter(([code]) => code !== '400')
    if (unexpected.length > 0 || r.errors > 0 || r.timeouts > 0)
      problems.push(
        `polls round ${round + 1}: status codes ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.timeouts} timeouts`,
      )
    raw.polls.push(r)
    process.stdout.write(
      `  polls round ${round + 1}: ${fmt(r.rps)} polls/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${fmt(r.cpuPerPoll)} µs CPU/poll\n`,
    )
    await check(`after polls round ${round + 1}`)
  }
}
if (settings.scenarios.includes('latency')) {
  raw.latency.poll = await measureLatency(decisionToTokenPoll)
  raw.latency.ping = await measureLatency(decisionToTokenPing)
  await check('after latency')
}

process.stdout.write('\n')
if (raw.polls.length > 0)
  process.stdout.write(
    `${table([
      ['CIBA polls at /token', 'polls/s median (min–max)', 'p50 ms', 'p99 ms', 'CPU µs/poll'],
      [
        `${settings.pending} pending, ${settings.connections} conn.`,
        range(raw.polls.map((r) => r.rps)),
        fmt(median(raw.polls.map((r) => r.p50))),
        fmt(median(raw.polls.map((r) => r.p99))),
        range(raw.polls.map((r) => r.cpuPerPoll)),
      ],
    ])}\n\n`,
  )
if (raw.latency.poll)
  process.stdout.write(
    `${table([
      ['decision to token', 'p50 ms', 'p99 ms', 'CPU µs/decision'],
      ...['poll', 'ping'].map((mode) => [
        mode === 'poll' ? 'poll mode (polling back to back)' : 'ping mode (fetch on the ping)',
        fmt(raw.latency[mode].p50, 1),
        fmt(raw.latency[mode].p99, 1),
        fmt(raw.latency[mode].cpuPerDecision),
      ]),
    ])}\n`,
  )
if (env.BENCH_JSON) writeFileSync(env.BENCH_JSON, JSON.stringify(raw, null, 2))
if (problems.length > 0) {
  process.stdout.write(`\nNOT CLEAN:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`)
  process.exitCode = 1
}
server.child.kill('SIGTERM')
notifications.close()
