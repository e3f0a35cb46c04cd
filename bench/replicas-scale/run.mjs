// Replica scale benchmark: client_credentials tokens per second from one, two and three Deputy
// processes on one PostgreSQL database, rounds interleaved, CPU per token beside the rate.
// How to run it and how to read it: bench/README.md.
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import {
  cpuMicros,
  createRun,
  fmt,
  listSetting,
  machine,
  machineLine,
  median,
  range,
  rotated,
  table,
  timedSettings,
} from '../lib/runner.mjs'
import { basicAuth, TOKEN_BODY } from '../token-endpoint/lib/common.mjs'
import { verifyClientCredentials } from '../token-endpoint/lib/verify.mjs'

const env = process.env
const settings = {
  ...timedSettings(env),
  connections: Number(env.BENCH_CONNECTIONS ?? 32),
  replicas: listSetting(env.BENCH_REPLICAS, '1,2,3').map(Number),
  postgres: env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
}
const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const run = createRun()
const { problems } = run

/**
 * CPU µs of every process named `postgres` (the server and its backends), by pid. They serve
 * whoever else uses the server too, so the figure is the whole server's.
 */
function postgresCpu() {
  const each = new Map()
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue
    } catch {
      continue
    }
    const cpu = cpuMicros(pid)
    if (cpu !== undefined) each.set(pid, cpu)
  }
  return each
}

/** The CPU the backends used between two `postgresCpu` samples (a new backend counts from 0). */
function postgresDelta([start, end]) {
  let sum = 0
  for (const [pid, cpu] of end) sum += cpu - (start.get(pid) ?? 0)
  return sum
}

/** A fresh database on the server for this run; dropped at the end. */
async function createDatabase() {
  const name = `deputy_bench_scale_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: settings.postgres })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(settings.postgres)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: settings.postgres })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await client.end()
    },
  }
}

console.log(
  `Replica scale benchmark — ${machineLine()}, ${settings.rounds} rounds, ${settings.warmup} s warm-up + ${settings.duration} s measured, ${settings.connections} connections split over the replicas, replicas ${settings.replicas.join(', ')}`,
)
const database = await createDatabase()
const most = Math.max(...settings.replicas)
const shared = {
  BENCH_SCALE_DATABASE: database.url,
  BENCH_SCALE_MASTER_KEY: randomBytes(32).toString('base64url'),
}
const replicas = []
const raw = { settings: { ...settings, postgres: undefined }, ...machine(), rounds: {} }
try {
  // One after another: the first migrates the database and registers the client.
  for (let i = 0; i < most; i++) {
    const first = replicas[0]
    const r = await run.startServer(`replica-${i + 1}`, here('server.mjs'), {
      env: first
        ? {
            ...shared,
            BENCH_SCALE_ISSUER: first.issuer,
            BENCH_SCALE_CLIENT_ID: first.clientId,
            BENCH_SCALE_CLIENT_SECRET: first.clientSecret,
          }
        : { ...shared, BENCH_SCALE_SETUP: '1' },
    })
    if (r.error) throw new Error(`replica ${i + 1} did not start: ${r.error}`)
    await verifyClientCredentials(r)
    console.log(
      `  replica ${i + 1} at ${r.url}: client_credentials verified (JWT, typ at+jwt, iss ${r.issuer}, aud; wrong secret 401 invalid_client)`,
    )
    replicas.push(r)
  }

  const results = Object.fromEntries(settings.replicas.map((n) => [n, []]))
  for (let round = 0; round < settings.rounds; round++) {
    for (const n of rotated(settings.replicas, round)) {
      const serving = replicas.slice(0, n)
      for (const r of serving) await verifyClientCredentials(r)
      const m = await run.measure(
        here('load.mjs'),
        {
          urls: serving.map((r) => new URL(r.tokenPath, r.url).href),
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basicAuth(serving[0].clientId, serving[0].clientSecret),
          },
          body: TOKEN_BODY,
          connections: settings.connections,
          warmup: settings.warmup,
          duration: settings.duration,
        },
        serving.flatMap((r) => r.pids),
        { sample: postgresCpu },
      )
      for (const r of serving) await verifyClientCredentials(r)
      const pgCpu = m.requests > 0 ? postgresDelta(m.sampled) / m.requests : undefined
      const result = { ...m, sampled: undefined, postgresCpuPerRequest: pgCpu }
      results[n][round] = result
      const failed = m.non2xx || m.errors || m.timeouts
      if (failed) problems.push(`${n} replicas: failed requests in round ${round + 1}`)
      console.log(
        `  round ${round + 1}/${settings.rounds} ${n} replica${n === 1 ? ' ' : 's'}  ${fmt(m.rps)} tokens/s (${m.perReplica.map((x) => fmt(x)).join(' + ')})  p50 ${fmt(m.p50, 1)} ms  p99 ${fmt(m.p99, 1)} ms  Deputy CPU ${fmt(m.cpuPerRequest)} µs/token  PostgreSQL CPU ${fmt(pgCpu)} µs/token${failed ? `  non-2xx ${m.non2xx} errors ${m.errors} timeouts ${m.timeouts}` : ''}`,
      )
    }
  }
  raw.rounds = results

  const base = settings.replicas[0]
  const rows = [
    [
      'replicas',
      'tokens/s median (min–max)',
      'p50 ms',
      'p99 ms',
      'Deputy CPU µs/token',
      'PostgreSQL CPU µs/token',
      `tokens/s / ${base} (same round)`,
    ],
  ]
  for (const n of settings.replicas) {
    const rs = results[n].filter(Boolean)
    const ratios = results[n].flatMap((r, i) =>
      r && results[base][i] ? [r.rps / results[base][i].rps] : [],
    )
    rows.push([
      String(n),
      range(rs.map((r) => r.rps)),
      fmt(median(rs.map((r) => r.p50)), 1),
      fmt(median(rs.map((r) => r.p99)), 1),
      fmt(median(rs.map((r) => r.cpuPerRequest))),
      fmt(median(rs.map((r) => r.postgresCpuPerRequest))),
      range(ratios, 2),
    ])
  }
  console.log(
    `\nclient_credentials tokens on one PostgreSQL (${settings.connections} connections, ${settings.duration} s per run)\n${table(rows)}`,
  )
  console.log(
    '\nDeputy CPU: the serving replicas (all threads) per token. PostgreSQL CPU: every postgres process on the machine per token (the server is shared; others using it show up here). The load generator shares the cores.',
  )
} catch (err) {
  problems.push(err.message)
  console.log(`  FAILED — ${err.message}`)
} finally {
  for (const r of replicas) r.child.kill('SIGTERM')
  await Promise.all(
    replicas.map((r) =>
      r.child.exitCode === null ? new Promise((resolve) => r.child.once('exit', resolve)) : null,
    ),
  )
  await database.drop().catch((err) => problems.push(`dropping the database: ${err.message}`))
  run.finish(raw)
}
