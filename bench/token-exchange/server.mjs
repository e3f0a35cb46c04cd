// One Deputy process for the token exchange benchmark: the built server (packages/server/dist), a
// real SQLite file, the audit chain on, as bench/token-endpoint/servers/deputy.mjs runs it. It
// serves both measured requests: client_credentials (an agent acting as itself) and a delegation
// exchange (RFC 8693: an MCP server acting for a person toward a downstream API, `act` in the
// token), so their costs compare on the same process, database and keys.
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
  RESOURCE,
  SCOPE,
} from '../token-endpoint/lib/common.mjs'
import { DOWNSTREAM } from './common.mjs'

const DIST = fileURLToPath(new URL('../../packages/server/dist/', import.meta.url))

try {
  if (!existsSync(`${DIST}index.js`)) throw new Error('Deputy is not built: run npm run build')
  const { createDeputy, listen, loadConfig } = await import(`${DIST}index.js`)
  const { mintAccessToken } = await import(`${DIST}oauth/access-token.js`)
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), 'deputy-bench-exchange-'))
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
      // The subject token must outlive the run (an exchanged token ends with it).
      accessTokenTtlSeconds: 3600,
      // Rate limits on (their cost is measured) but far above what one load client sends.
      tokenRateLimitPerClient: 1_000_000_000,
      tokenRateLimitPerAddress: 1_000_000_000,
    },
  })
  const deputy = await createDeputy(config)
  const { deps } = deputy
  const actor = { type: 'system', id: 'bench' }
  const mcp = await deps.resources.put(
    { uri: RESOURCE, name: 'Bench MCP server', scopes: { [SCOPE]: 'Read' }, isDefault: true },
    actor,
  )
  await deps.resources.put(
    { uri: DOWNSTREAM, name: 'Downstream API', scopes: { [SCOPE]: 'Read' } },
    actor,
  )
  const cc = await deps.clients.register(
    {
      name: 'bench client_credentials',
      grantTypes: ['client_credentials'],
      allowedScopes: [SCOPE],
    },
    actor,
  )
  const agent = await deps.clients.register(
    { name: 'bench agent', redirectUris: ['http://127.0.0.1:9999/callback'] },
    actor,
  )
  const server = await deps.clients.register(
    {
      name: 'bench MCP server',
      grantTypes: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      allowedResources: [RESOURCE],
    },
    actor,
  )
  await deps.delegationRules.set(server.client.clientId, { resources: [DOWNSTREAM] }, actor)
  const person = await deps.users.create(BENCH_USER, actor)
  const subject = await mintAccessToken(deps, {
    client: agent.client,
    user: person,
    resource: mcp,
    scopes: [SCOPE],
    grantId: null,
  })
  const running = await listen(deputy, { port, host: '127.0.0.1' })
  announce(
    {
      name: 'deputy',
      url: running.url,
      issuer,
      jwksPath: '/jwks',
      cc: { clientId: cc.client.clientId, clientSecret: cc.clientSecret },
      exchanger: { clientId: server.client.clientId, clientSecret: server.clientSecret },
      subjectToken: subject.token,
    },
    async () => {
      await running.shutdown()
      rmSync(dir, { recursive: true, force: true })
    },
  )
} catch (err) {
  failStart(err)
}
