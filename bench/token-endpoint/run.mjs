// Token endpoint benchmark: Deputy against node-oidc-provider and a bare hono + jose route,
// each in its own process on 127.0.0.1, loaded from another process, rounds interleaved.
// How to run it and how to read it: bench/README.md.
import { fileURLToPath } from 'node:url'
import { createRun, listSetting, machine, machineLine, timedSettings } from '../lib/runner.mjs'
import { basicAuth, TOKEN_BODY } from './lib/common.mjs'
import { client } from './lib/flow.mjs'
import { verifyAccessToken, verifyClientCredentials } from './lib/verify.mjs'

const env = process.env
const settings = {
  ...timedSettings(env),
  connections: Number(env.BENCH_CONNECTIONS ?? 32),
  // Flows in flight: 32 (the token scenario's connections) measures capacity, where the servers'
  // CPU bounds the rate; 8 leaves Deputy waiting on its commits (each flow waits for two fsyncs),
  // so it shows latency times concurrency. The target is judged at the first.
  flowConcurrency: listSetting(env.BENCH_FLOW_CONCURRENCY, '32,8').map(Number),
  servers: listSetting(env.BENCH_SERVERS, 'bare,oidc,deputy'),
  scenarios: listSetting(env.BENCH_SCENARIOS, 'token,flows'),
}
// Issue 14 §5: client_credentials at least 0.9× the bare route's throughput with at most 1.15× its
// CPU per token; full authorization-code flows at least 1.2× node-oidc-provider's.
const TARGET = { token: { throughput: 0.9, cpu: 1.15 }, flows: { throughput: 1.2 } }
const SERVER_SCRIPTS = { bare: 'bare.mjs', oidc: 'oidc-provider.mjs', deputy: 'deputy.mjs' }
const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const run = createRun()
const { problems } = run
const startServer = (name) => run.startServer(name, here(`servers/${SERVER_SCRIPTS[name]}`))
const measure = (script, job, server) => run.measure(here(`load/${script}`), job, server.pids)

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

function report(title, unit, servers, results, pairs) {
  console.log(`\n${title}\n${run.throughputTable(servers, results, { unit })}`)
  console.log(`\n${run.ratioTable(pairs, results)}`)
}

console.log(
  `Token endpoint benchmark — ${machineLine()}, ${settings.rounds} rounds, ${settings.warmup} s warm-up + ${settings.duration} s measured, ${settings.connections} connections (flows: ${settings.flowConcurrency.join(' and ')} in flight)`,
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
const raw = { settings, ...machine(), token: {}, flows: {} }

if (settings.scenarios.includes('token')) {
  console.log('\nclient_credentials: POST /token, Basic auth, resource indicator')
  raw.token = await run.scenario('token', servers, settings.rounds, async (server) => {
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
    ['deputy', 'bare', TARGET.token],
    ['deputy', 'oidc'],
    ['oidc', 'bare'],
  ]
    .filter(([a, b]) => byName[a] && byName[b])
    .map(([a, b, target]) => [byName[a], byName[b], target])
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
  raw.flows = {}
  for (const [index, concurrency] of settings.flowConcurrency.entries()) {
    raw.flows[concurrency] = await run.scenario(
      `flows (${concurrency} in flight)`,
      ready,
      settings.rounds,
      async (server) => {
        const r = await measure(
          'flows.mjs',
          {
            info: { ...server, child: undefined },
            concurrency,
            warmup: settings.warmup,
            duration: settings.duration,
          },
          server,
        )
        await verifyFlow(server)
        return r
      },
    )
    const target = index === 0 ? TARGET.flows : undefined
    const pairs = byName.deputy && byName.oidc ? [[byName.deputy, byName.oidc, target]] : []
    report(
      `authorization-code flows (${concurrency} in flight, ${settings.duration} s per run)`,
      'flow',
      ready,
      raw.flows[concurrency],
      pairs,
    )
  }
}

run.finish(raw)
