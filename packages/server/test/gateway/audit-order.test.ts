import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { sql } from 'kysely'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import { tailAudit } from '../../src/audit/query.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { chainAudit } from '../../src/gateway/audit.js'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { systemClock } from '../../src/lib/clock.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { startGateway, startIssuer } from './helpers.js'

// No action without its audit record: the gateway writes a call's decision before the upstream
// sees the call, its outcome before the client sees the answer, and forwards nothing whose
// decision could not be written (unless the operator chose `continue`).

type Issuer = Awaited<ReturnType<typeof startIssuer>>
type HttpUpstream = Awaited<ReturnType<typeof startHttpUpstream>>

let issuer: Issuer
let upstream: HttpUpstream
const closers: (() => Promise<void>)[] = []

beforeAll(async () => {
  issuer = await startIssuer()
  upstream = await startHttpUpstream()
})

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

afterAll(async () => {
  await upstream?.close()
  await issuer?.close()
})

/** The tool calls the upstream received: the tool each named. */
function upstreamCalls(): string[] {
  return upstream.seen.flatMap((request) => {
    if (request.method !== 'POST') return []
    const body = JSON.parse(request.body) as { method?: string; params?: { name?: string } }
    return body.method === 'tools/call' ? [body.params?.name ?? ''] : []
  })
}

async function gateway(options: Omit<Parameters<typeof startGateway>[0], 'issuer' | 'upstream'>) {
  const gw = await startGateway({
    issuer: issuer.issuer,
    upstream: httpUpstream({ url: upstream.url }),
    ...options,
  })
  closers.push(() => gw.close())
  return gw
}

async function connect(resource: string, sub = 'alice'): Promise<Client> {
  const token = await issuer.token({ aud: resource, sub })
  const client = new Client({ name: 'audit-order-test', version: '1.0.0' })
  await client.connect(
    new StreamableHTTPClientTransport(new URL(resource), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  )
  closers.push(() => client.close())
  return client
}

const failing = (type: string) => async (event: { type: string }) => {
  if (event.type === type) throw new Error('the audit sink is down')
}

describe('gateway audit records come before what they allow', () => {
  it('a call whose decision record cannot be written is refused and the upstream never sees it', async () => {
    const gw = await gateway({ audit: failing('tool.allowed') })
    const client = await connect(gw.resource)
    const before = upstreamCalls().length
    const error = await client.callTool({ name: 'echo', arguments: { text: 'unrecorded' } }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    )
    expect(error?.message).toContain('This call to echo was not run: it could not be recorded.')
    expect(upstreamCalls().slice(before)).toEqual([])
    expect(gw.errors.map((e) => e.message)).toEqual(['the audit sink is down'])
    expect(gw.events).toEqual([])
  })

  it('with auditFailure continue, the call whose decision record failed goes on and onError is told', async () => {
    const gw = await gateway({ audit: failing('tool.allowed'), auditFailure: 'continue' })
    const client = await connect(gw.resource)
    const before = upstreamCalls().length
    const result = await client.callTool({ name: 'echo', arguments: { text: 'logged' } })
    expect((result.content as { text: string }[])[0]?.text).toBe('echo: logged')
    expect(upstreamCalls().slice(before)).toEqual(['echo'])
    expect(gw.errors.map((e) => e.message)).toEqual(['the audit sink is down'])
    expect(gw.events.map((event) => event.type)).toEqual(['tool.called'])
  })

  it('a batch is not forwarded in part when one decision record fails', async () => {
    let allowed = 0
    const gw = await gateway({
      audit: async (event) => {
        if (event.type === 'tool.allowed' && ++allowed === 2) throw new Error('disk full')
      },
    })
    const token = await issuer.token({ aud: gw.resource })
    const headers = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    }
    const opened = await fetch(gw.resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-03-26',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    })
    const session = opened.headers.get('mcp-session-id') as string
    await opened.text()
    const before = upstreamCalls().length
    const response = await fetch(gw.resource, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-03-26' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami' } },
      ]),
    })
    expect(response.status).toBe(200)
    const answers = (await response.json()) as { id: number; error?: { code: number } }[]
    expect(answers.map((answer) => [answer.id, answer.error?.code])).toEqual([
      [1, -32600],
      [2, -32603],
    ])
    expect(upstreamCalls().slice(before)).toEqual([])
  })

  it('records the decision before the upstream sees the call and the outcome before the client gets the answer', async () => {
    const log: string[] = []
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    let outcomeStarted: () => void = () => {}
    const outcomeHeld = new Promise<void>((resolve) => {
      outcomeStarted = resolve
    })
    const gw = await gateway({
      audit: async (event) => {
        log.push(`${event.type} (upstream has ${upstreamCalls().length - before})`)
        if (event.type === 'tool.called') {
          outcomeStarted()
          await released
        }
      },
    })
    const client = await connect(gw.resource)
    const other = await connect(gw.resource, 'bob')
    const before = upstreamCalls().length
    const answered = client.callTool({ name: 'echo', arguments: { text: 'ordered' } }).then(() => {
      log.push('client has the answer')
    })
    await outcomeHeld
    // A whole other exchange through the gateway completes meanwhile: the held answer does not.
    await other.ping()
    log.push('ping answered')
    release()
    await answered
    expect(log).toEqual([
      'tool.allowed (upstream has 0)',
      'tool.called (upstream has 1)',
      'ping answered',
      'client has the answer',
    ])
  })
})

describe.each(DIALECTS)("with Deputy's audit chain on $name", ({ name, create }) => {
  let db: TestDatabase | undefined
  let store: Store | undefined

  afterEach(async () => {
    await store?.close()
    await db?.dispose()
    store = undefined
    db = undefined
  })

  it.skipIf(skipDialect(name))(
    'a failed append refuses the call end to end: the upstream never sees it and the chain still verifies',
    async () => {
      db = await create()
      store = openStore(db.url)
      await migrateToLatest(store)
      // The database itself refuses the decision record, as a full disk or a lost primary would.
      if (store.dialect === 'sqlite') {
        await sql`CREATE TRIGGER refuse_allowed BEFORE INSERT ON audit_events WHEN NEW.type = 'tool.allowed' BEGIN SELECT RAISE(ABORT, 'audit storage refused the record'); END`.execute(
          store.db,
        )
      } else {
        await sql`CREATE FUNCTION refuse_allowed() RETURNS trigger AS $$ BEGIN IF NEW.type = 'tool.allowed' THEN RAISE EXCEPTION 'audit storage refused the record'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`.execute(
          store.db,
        )
        await sql`CREATE TRIGGER refuse_allowed BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_allowed()`.execute(
          store.db,
        )
      }
      const gw = await gateway({
        audit: chainAudit(createAuditLog(store, systemClock)),
        rules: { tools: { audit_report: { roles: ['auditor'] } } },
      })
      const client = await connect(gw.resource)
      const before = upstreamCalls().length
      const error = await client.callTool({ name: 'echo', arguments: { text: 'x' } }).then(
        () => undefined,
        (caught: unknown) => caught as Error,
      )
      expect(error?.message).toContain('it could not be recorded')
      // A refusal is still recorded (and answered) as one.
      const refused = await client.callTool({ name: 'audit_report', arguments: {} })
      expect(refused.isError).toBe(true)
      expect(upstreamCalls().slice(before)).toEqual([])
      expect(gw.errors.map((e) => e.message).join('\n')).toContain('audit storage refused')
      const records = await tailAudit(store, { limit: 10 })
      expect(records.map((record) => record.type)).toEqual(['tool.refused'])
      expect((await verifyAuditChain(store)).ok).toBe(true)
    },
  )
})
