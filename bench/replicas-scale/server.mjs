// One Deputy replica of the scale benchmark: the built server (packages/server/dist) on the
// PostgreSQL database the runner created, the hash-chained audit log and the rate limits on (on
// PostgreSQL the limits count in the shared `rate_limit_buckets` table, as replicas do). Every
// replica has the same master key and the same issuer, as replicas behind one load balancer do.
// The first one (BENCH_SCALE_SETUP=1) registers the resource and the client_credentials client;
// the runner gives the others its credentials. Development mode, because production refuses the
// plain http issuer a loopback benchmark serves (nothing on the token path reads the mode).
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { announce, failStart, freePort, RESOURCE, SCOPE } from '../token-endpoint/lib/common.mjs'

const DIST = fileURLToPath(new URL('../../packages/server/dist/index.js', import.meta.url))
const env = process.env

try {
  if (!existsSync(DIST)) throw new Error(`Deputy is not built (${DIST} missing): run npm run build`)
  const { createDeputy, listen, loadConfig } = await import(DIST)
  const port = await freePort()
  const issuer = env.BENCH_SCALE_ISSUER || `http://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), 'deputy-bench-scale-'))
  const config = loadConfig({
    env: {},
    overrides: {
      mode: 'development',
      issuer,
      host: '127.0.0.1',
      port,
      dataDir: dir,
      database: env.BENCH_SCALE_DATABASE,
      masterKey: env.BENCH_SCALE_MASTER_KEY,
      logLevel: env.BENCH_DEPUTY_LOG_LEVEL ?? 'warn',
      // Rate limits on (their cost is measured) but far above what the load client sends.
      tokenRateLimitPerClient: 1_000_000_000,
      tokenRateLimitPerAddress: 1_000_000_000,
    },
  })
  const deputy = await createDeputy(config)
  let clientId = env.BENCH_SCALE_CLIENT_ID
  let clientSecret = env.BENCH_SCALE_CLIENT_SECRET
  if (env.BENCH_SCALE_SETUP === '1') {
    const actor = { type: 'system', id: 'bench' }
    await deputy.deps.resources.put(
      { uri: RESOURCE, name: 'Bench MCP server', scopes: { [SCOPE]: 'Read' }, isDefault: true },
      actor,
    )
    const cc = await deputy.deps.clients.register(
      {
        name: 'bench client_credentials',
        grantTypes: ['client_credentials'],
        allowedScopes: [SCOPE],
      },
      actor,
    )
    clientId = cc.client.clientId
    clientSecret = cc.clientSecret
  }
  const server = await listen(deputy, { port, host: '127.0.0.1' })
  announce(
    {
      url: server.url,
      issuer,
      tokenPath: '/token',
      jwksPath: '/jwks',
      clientId,
      clientSecret,
    },
    async () => {
      await server.shutdown()
      rmSync(dir, { recursive: true, force: true })
    },
  )
} catch (err) {
  failStart(err)
}
