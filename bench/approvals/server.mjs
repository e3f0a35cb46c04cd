// The Deputy the approvals benchmark measures: the built server (packages/server/dist) on a real
// SQLite file in a temporary folder (or BENCH_DATABASE, e.g. a postgres:// URL), the hash-chained
// audit log on. Development mode, because ping mode posts to the runner over plain http on
// loopback, which production refuses; nothing else differs on the paths measured.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { announce, failStart, freePort } from '../token-endpoint/lib/common.mjs'

const DIST = fileURLToPath(new URL('../../packages/server/dist/index.js', import.meta.url))
export const RESOURCE = 'http://127.0.0.1:9999/trading'
const CIBA = 'urn:openid:params:grant-type:ciba'
const PENDING = Number(process.env.BENCH_PENDING ?? 1000)

try {
  if (!existsSync(DIST)) throw new Error(`Deputy is not built (${DIST} missing): run npm run build`)
  const { createDeputy, listen, loadConfig } = await import(DIST)
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), 'deputy-bench-approvals-'))
  const config = loadConfig({
    env: {},
    overrides: {
      issuer,
      host: '127.0.0.1',
      port,
      dataDir: dir,
      database: process.env.BENCH_DATABASE ?? join(dir, 'deputy.db'),
      masterKey: randomBytes(32).toString('base64url'),
      logLevel: process.env.BENCH_DEPUTY_LOG_LEVEL ?? 'warn',
      sweepIntervalSeconds: 0,
      backchannelPollIntervalSeconds: 1,
      backchannelMaxPendingPerClientAndPerson: 1000,
      dangerouslyAllowHttpLoopbackNotifications: true,
      // Rate limits on (their cost is measured) but far above what one load client sends.
      tokenRateLimitPerClient: 1_000_000_000,
      tokenRateLimitPerAddress: 1_000_000_000,
      backchannelRateLimitPerClient: 1_000_000_000,
      backchannelRateLimitPerAddress: 1_000_000_000,
    },
  })
  const deputy = await createDeputy(config)
  const { deps } = deputy
  const actor = { type: 'system', id: 'bench' }
  await deps.resources.put(
    { uri: RESOURCE, name: 'Trading', scopes: { 'stock:trade': 'Trade stocks' }, isDefault: true },
    actor,
  )
  const person = await deps.users.create({ email: 'bench@example.com', name: 'Bench' }, actor)
  const register = async (extra) => {
    const created = await deps.clients.register(
      { name: 'bench agent', grantTypes: [CIBA], ...extra },
      actor,
    )
    return { clientId: created.client.clientId, clientSecret: created.clientSecret }
  }
  const poller = await register({})
  const pinged = await register({
    backchannelTokenDeliveryMode: 'ping',
    backchannelClientNotificationEndpoint: process.env.BENCH_NOTIFY_URL,
  })
  const adminKey = (await deps.adminApiKeys.create('bench', actor)).key

  /**
   * A pending request of the poller for the bench person, stored as /bc-authorize stores it. Its
   * interval is 0 s, so a poll is never early: every poll of a pending request is answered
   * `authorization_pending` (a poll that came early would be `slow_down`, the same work).
   */
  const pending = async () => {
    const created = await deps.approvals.create(
      {
        clientId: poller.clientId,
        userId: person.id,
        resource: RESOURCE,
        scopes: ['openid', 'stock:trade'],
        authorizationDetails: [
          { type: 'tool_call', server: RESOURCE, tool: 'buy_stock', arguments: { qty: 10 } },
        ],
        bindingMessage: 'Buy 10 ACME',
        expiresInSeconds: 3600,
        deliveryMode: 'poll',
        notificationToken: null,
      },
      { intervalSeconds: 0, maxPending: Number.MAX_SAFE_INTEGER },
    )
    return { id: created.request.id, authReqId: created.authReqId }
  }
  const background = []
  for (let i = 0; i < PENDING; i++) background.push((await pending()).authReqId)

  process.on('message', async (m) => {
    if (m?.type === 'pending') process.send({ type: 'pending', seq: m.seq, ...(await pending()) })
  })

  const server = await listen(deputy, { port, host: '127.0.0.1' })
  announce(
    {
      url: server.url,
      resource: RESOURCE,
      person: person.email,
      poller,
      pinged,
      adminKey,
      background,
    },
    async () => {
      await server.shutdown()
      rmSync(dir, { recursive: true, force: true })
    },
  )
} catch (err) {
  failStart(err)
}
