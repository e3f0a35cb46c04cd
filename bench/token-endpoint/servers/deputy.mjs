// Deputy as shipped: the built server (packages/server/dist), a real SQLite file in a temporary
// folder, the hash-chained audit log on. Development mode, because production refuses a plain
// http issuer and the benchmark serves HTTP on loopback (nothing on the token path reads the mode;
// the master key is given, as in production). Only the log level is lowered (default `warn`,
// BENCH_DEPUTY_LOG_LEVEL to change) so the comparison is not about writing logs to a pipe.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  announce,
  BENCH_USER,
  failStart,
  freePort,
  REDIRECT_URI,
  RESOURCE,
  SCOPE,
} from '../lib/common.mjs'

const DIST = fileURLToPath(new URL('../../../packages/server/dist/index.js', import.meta.url))

try {
  if (!existsSync(DIST)) throw new Error(`Deputy is not built (${DIST} missing): run npm run build`)
  const { createDeputy, listen, loadConfig } = await import(DIST)
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), 'deputy-bench-'))
  const config = loadConfig({
    env: {},
    overrides: {
      mode: 'development',
      issuer,
      host: '127.0.0.1',
      port,
      dataDir: dir,
      database: join(dir, 'deputy.db'),
      masterKey: randomBytes(32).toString('base64url'),
      logLevel: process.env.BENCH_DEPUTY_LOG_LEVEL ?? 'warn',
      // Rate limits on (their cost is measured) but far above what one load client sends.
      tokenRateLimitPerClient: 1_000_000_000,
      tokenRateLimitPerAddress: 1_000_000_000,
    },
  })
  const deputy = await createDeputy(config)
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
  const web = await deputy.deps.clients.register(
    { name: 'bench web app', redirectUris: [REDIRECT_URI], grantTypes: ['authorization_code'] },
    actor,
  )
  await deputy.deps.users.create(BENCH_USER, actor)
  const server = await listen(deputy, { port, host: '127.0.0.1' })
  announce(
    {
      name: 'deputy',
      label: 'Deputy',
      url: server.url,
      issuer,
      tokenPath: '/token',
      jwksPath: '/jwks',
      clientId: cc.client.clientId,
      clientSecret: cc.clientSecret,
      authorizationCode: {
        authorizePath: '/authorize',
        clientId: web.client.clientId,
        clientSecret: web.clientSecret,
        login: { path: '/login', ...BENCH_USER },
      },
    },
    async () => {
      await server.shutdown()
      rmSync(dir, { recursive: true, force: true })
    },
  )
} catch (err) {
  failStart(err)
}
