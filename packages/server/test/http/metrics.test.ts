import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_LABEL_VALUES, reasonKind } from '../../src/http/metrics.js'
import { listen, type RunningServer } from '../../src/server.js'
import { freePort } from '../interop/fixture.js'
import { ADMIN, createWorld, RESOURCE, type World } from '../oauth/token-helpers.js'

// Issue 14 §4: Prometheus metrics at /metrics — requests and latency per route, tokens by grant,
// refusals by reason, pending approvals, audit append latency — for administrators (an admin API
// key as bearer token) or without credentials on a port of their own.

/** The value of one sample line (`name{labels} value`), or undefined when there is none. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `))
  return found === undefined ? undefined : Number(found.slice(line.length + 1))
}

describe('/metrics', () => {
  let world: World
  let server: RunningServer
  let key: string

  beforeAll(async () => {
    world = await createWorld()
    server = await listen(world.deputy, { port: 0, host: '127.0.0.1' })
    key = (await world.deputy.deps.adminApiKeys.create('prometheus', ADMIN)).key
  }, 60_000)
  afterAll(async () => {
    await server?.shutdown()
    await world?.deputy.database.dispose()
  })

  const scrape = async () => {
    const res = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${key}` },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    return res.text()
  }
  const clientCredentials = (secret: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${btoa(`${world.agent.client.clientId}:${secret}`)}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE }),
    })

  it('is refused without an admin API key, and to a wrong one', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401)
    const wrong = await fetch(`${server.url}/metrics`, {
      headers: { authorization: 'Bearer not-a-key' },
    })
    expect(wrong.status).toBe(401)
  })

  it('counts tokens by grant type, requests by route pattern and refusals by reason kind', async () => {
    const before = await scrape()
    const issuedBefore =
      sample(before, 'deputy_tokens_issued_total{grant_type="client_credentials"}') ?? 0
    for (let i = 0; i < 3; i++)
      expect((await clientCredentials(world.agent.secret)).status).toBe(200)
    expect((await clientCredentials('wrong-secret')).status).toBe(401)
    const after = await scrape()
    expect(sample(after, 'deputy_tokens_issued_total{grant_type="client_credentials"}')).toBe(
      issuedBefore + 3,
    )
    expect(
      sample(after, 'deputy_http_requests_total{method="POST",route="/token",status="200"}'),
    ).toBeGreaterThanOrEqual(3)
    expect(
      sample(after, 'deputy_http_requests_total{method="POST",route="/token",status="401"}'),
    ).toBe(1)
    expect(
      sample(after, 'deputy_http_request_duration_seconds_count{method="POST",route="/token"}'),
    ).toBeGreaterThanOrEqual(4)
    const refused = after
      .split('\n')
      .filter((l) => l.startsWith('deputy_refusals_total{type="token.refused"'))
    expect(refused).toHaveLength(1)
    expect(refused[0]).not.toContain('wrong-secret')
    // Every append to the chain is timed: at least the tokens' records.
    expect(sample(after, 'deputy_audit_append_duration_seconds_count')).toBeGreaterThanOrEqual(3)
    expect(sample(after, 'deputy_audit_events_total{type="token.issued"}')).toBeGreaterThanOrEqual(
      3,
    )
  })

  it('shows the approvals waiting for a person', async () => {
    const { deps } = world.deputy
    const before = sample(await scrape(), 'deputy_approvals_pending') ?? -1
    expect(before).toBe(0)
    const created = await deps.approvals.create(
      {
        clientId: world.agent.client.clientId,
        userId: world.alice.id,
        resource: RESOURCE,
        scopes: [],
        authorizationDetails: [],
        bindingMessage: null,
        expiresInSeconds: 300,
        deliveryMode: 'poll',
        notificationToken: null,
      },
      { intervalSeconds: 5, maxPending: 10 },
    )
    expect(created).not.toBeNull()
    expect(sample(await scrape(), 'deputy_approvals_pending')).toBe(1)
  })

  it('labels requests by the route pattern, never the path: a flood of paths adds no series', async () => {
    for (let i = 0; i < 50; i++) await fetch(`${server.url}/no/such/${i}?x=${i}`)
    await fetch(`${server.url}/admin/api/users/${'u'.repeat(30)}`, {
      headers: { authorization: `Bearer ${key}` },
    })
    const text = await scrape()
    const series = text.split('\n').filter((l) => l.startsWith('deputy_http_requests_total{'))
    expect(series.some((l) => l.includes('/no/such'))).toBe(false)
    expect(series.some((l) => l.includes('uuuuu'))).toBe(false)
    expect(series.some((l) => l.includes('route="unmatched"'))).toBe(true)
    expect(series.some((l) => l.includes('route="/admin/api/users/:id"'))).toBe(true)
    expect(series.length).toBeLessThan(MAX_LABEL_VALUES)
  })

  it('takes only the code-chosen first word of a reason as its kind', () => {
    expect(reasonKind('unsupported-grant-type urn:evil:whatever')).toBe('unsupported-grant-type')
    expect(reasonKind('invalid-client-secret')).toBe('invalid-client-secret')
    expect(reasonKind('<script>')).toBe('unspecified')
    expect(reasonKind(undefined)).toBe('unspecified')
  })
})

describe('deputy start with metricsPort', () => {
  let child: ChildProcess | undefined
  let dir: string
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves /metrics without credentials on its own port, with the process metrics, and nothing else', async () => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-metrics-'))
    const metricsPort = await freePort()
    child = spawn(
      process.execPath,
      [join(import.meta.dirname, '../../bin/deputy.js'), 'start', '--port', '0'],
      {
        cwd: dir,
        env: { ...process.env, DEPUTY_METRICS_PORT: String(metricsPort) },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let banner = ''
    child.stderr?.on('data', (chunk) => {
      banner += String(chunk)
    })
    while (!banner.includes('metrics:')) {
      if (child.exitCode !== null) throw new Error(`deputy start exited: ${banner}`)
      await new Promise((done) => setTimeout(done, 50))
    }
    expect(banner).toContain(`metrics:    http://127.0.0.1:${metricsPort}/metrics`)
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(text).toContain('deputy_process_process_cpu_user_seconds_total')
    expect(text).toContain('deputy_approvals_pending 0')
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(404)
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
  }, 60_000)
})
