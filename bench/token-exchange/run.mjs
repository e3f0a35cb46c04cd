// Token exchange benchmark (issue 13 §1): delegation exchanges (RFC 8693, `act` in the token)
// beside client_credentials, both against one Deputy process in one run, rounds interleaved,
// loaded from another process. Prints requests/s, latency and CPU µs per operation for each, and
// the same-round ratio exchange / client_credentials. How to read it: bench/README.md.
import { fileURLToPath } from 'node:url'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { createRun, machine, machineLine, timedSettings } from '../lib/runner.mjs'
import { basicAuth, RESOURCE, TOKEN_BODY } from '../token-endpoint/lib/common.mjs'
import { DOWNSTREAM } from './common.mjs'

const env = process.env
const settings = { ...timedSettings(env), connections: Number(env.BENCH_CONNECTIONS ?? 32) }
const here = (path) => fileURLToPath(new URL(path, import.meta.url))
const run = createRun()
const { problems } = run

console.log(
  `Token exchange benchmark — ${machineLine()}, ${settings.rounds} rounds, ${settings.warmup} s warm-up + ${settings.duration} s measured, ${settings.connections} connections`,
)
const server = await run.startServer('deputy', here('server.mjs'))
if (server.error) {
  console.log(`  Deputy did not start — ${server.error}`)
  problems.push(`Deputy: did not start: ${server.error}`)
  run.finish({})
  process.exit()
}

const exchangeBody = new URLSearchParams({
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
  subject_token: server.subjectToken,
  subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  resource: DOWNSTREAM,
}).toString()

/** The two operations, as peers of one scenario (the same process serves both). */
const operations = [
  {
    ...server,
    name: 'cc',
    label: 'client_credentials',
    body: TOKEN_BODY,
    auth: basicAuth(server.cc.clientId, server.cc.clientSecret),
    audience: RESOURCE,
  },
  {
    ...server,
    name: 'exchange',
    label: 'token exchange',
    body: exchangeBody,
    auth: basicAuth(server.exchanger.clientId, server.exchanger.clientSecret),
    audience: DOWNSTREAM,
  },
]

/** One answer checked as a resource server would; the exchange's also names the actor in act. */
async function verify(op) {
  const res = await fetch(new URL('/token', op.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: op.auth },
    body: op.body,
  })
  const body = await res.json()
  if (res.status !== 200) throw new Error(`${op.label} answered ${res.status} ${body.error}`)
  const jwks = createLocalJWKSet(await (await fetch(new URL(op.jwksPath, op.url))).json())
  const { payload } = await jwtVerify(body.access_token, jwks, {
    issuer: op.issuer,
    audience: op.audience,
    typ: 'at+jwt',
  })
  if (op.name === 'exchange' && payload.act?.sub !== op.exchanger.clientId)
    throw new Error(`the exchanged token's act is ${JSON.stringify(payload.act)}`)
}

for (const op of operations) {
  try {
    await verify(op)
    console.log(
      `  ${op.label}: verified (JWT, typ at+jwt, iss, aud${op.name === 'exchange' ? ', act' : ''})`,
    )
  } catch (err) {
    op.error = `verification failed: ${err.message}`
    problems.push(`${op.label}: ${op.error}`)
    console.log(`  ${op.label}: VERIFICATION FAILED — ${err.message}`)
  }
}

const results = await run.scenario('token', operations, settings.rounds, async (op) => {
  const r = await run.measure(
    here('../token-endpoint/load/autocannon.mjs'),
    {
      url: new URL('/token', op.url).href,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: op.auth },
      body: op.body,
      connections: settings.connections,
      warmup: settings.warmup,
      duration: settings.duration,
    },
    op.pids,
  )
  await verify(op)
  return r
})

console.log(
  `\nOne Deputy process (${settings.connections} connections, ${settings.duration} s per run)\n${run.throughputTable(operations, results)}`,
)
console.log(`\n${run.ratioTable([[operations[1], operations[0]]], results)}`)
run.finish({ settings, ...machine(), results })
