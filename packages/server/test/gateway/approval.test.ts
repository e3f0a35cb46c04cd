import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { APPROVAL_META_KEY } from '@deputy/mcp'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decideApproval } from '../../src/approvals/decide.js'
import { tailAudit } from '../../src/audit/query.js'
import type { Actor, AuditRecord } from '../../src/audit/types.js'
import { chainAudit } from '../../src/gateway/audit.js'
import { issuerJwtVerifier } from '../../src/gateway/authorization-server.js'
import { createGateway, type Gateway } from '../../src/gateway/gateway.js'
import { parseRules } from '../../src/gateway/rules.js'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { createSqlUserStateStore } from '../../src/mcp-state/index.js'
import { listen, type RunningServer } from '../../src/server.js'
import { deputyCli, lines } from '../cli/run.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { freePort } from '../interop/fixture.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { listenOn } from './helpers.js'

// Issue 11 §5 for `deputy gateway`: an `approval` rule in the rules file holds a call until the
// person approves it through Deputy (the gateway is a confidential CIBA client); the upstream is
// an unchanged MCP server, the agent the official MCP SDK client, Deputy real on loopback.

const ADMIN: Actor = { type: 'system', id: 'test' }
const CIBA = 'urn:openid:params:grant-type:ciba'

describe('the gateway’s approval rule (issue 11 §5)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let issuer: string
  let alice: Actor & { id: string }
  let upstream: Awaited<ReturnType<typeof startHttpUpstream>>
  let front: Awaited<ReturnType<typeof listenOn>>
  let gateway: Gateway | undefined
  let resource: string
  let client: Client
  let transport: StreamableHTTPClientTransport
  let accessToken: string
  /** A gateway in front of the same upstream whose calls wait `waitSeconds` for the person. */
  let gatewayWaiting: (waitSeconds: number) => Gateway

  beforeAll(async () => {
    const port = await freePort()
    issuer = `http://127.0.0.1:${port}`
    deputy = await startTestDeputy({ config: { issuer, port, backchannelPollIntervalSeconds: 1 } })
    server = await listen(deputy, { port, host: '127.0.0.1' })
    const { deps } = deputy
    const user = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
    alice = { type: 'user', id: user.id }
    const register = async (name: string) => {
      const created = await deps.clients.register({ name, grantTypes: [CIBA] }, ADMIN)
      return { clientId: created.client.clientId, secret: created.clientSecret as string }
    }
    const gatewayClient = await register('Tools gateway')
    const agent = await register('Agent')

    upstream = await startHttpUpstream()
    front = await listenOn(
      (request) => gateway?.fetch(request) ?? new Response(null, { status: 503 }),
    )
    resource = `${front.url}/mcp`
    await deps.resources.put(
      { uri: resource, scopes: { tools: 'Use the tools' }, claimsTemplate: ['name'] },
      ADMIN,
    )
    gatewayWaiting = (waitSeconds) =>
      createGateway({
        resource,
        authorizationServers: [issuer],
        verifier: issuerJwtVerifier({ issuer, audience: resource }),
        upstream: httpUpstream({ url: upstream.url }),
        rules: parseRules({
          tools: {
            echo: { scopes: ['tools'], approval: { bindingMessage: 'Echo {text}' } },
            count: { approval: { over: { n: 3 } } },
          },
        }),
        audit: chainAudit(deps.audit),
        approvals: {
          issuer,
          clientId: gatewayClient.clientId,
          clientSecret: gatewayClient.secret,
          waitSeconds,
          state: createSqlUserStateStore({ store: deps.store, clock: deps.clock }),
        },
      })
    gateway = gatewayWaiting(1)

    // Alice lets the agent use the tools (CIBA too, to get her token from Deputy).
    const basic = `Basic ${btoa(`${agent.clientId}:${agent.secret}`)}`
    const asked = await fetch(`${issuer}/bc-authorize`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ scope: 'openid tools', login_hint: alice.id, resource }),
    })
    const { auth_req_id, approval_id } = (await asked.json()) as Record<string, string>
    await decide(approval_id as string, 'approved')
    const issued = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: CIBA, auth_req_id: auth_req_id as string }),
    })
    accessToken = ((await issued.json()) as { access_token: string }).access_token
    client = new Client({ name: 'agent', version: '1.0.0' })
    transport = new StreamableHTTPClientTransport(new URL(resource), {
      authProvider: { token: async () => accessToken },
    })
    await client.connect(transport)
  }, 60_000)

  afterAll(async () => {
    await client?.close()
    await gateway?.close()
    await front?.close()
    await upstream?.close()
    await server?.shutdown()
    await deputy?.database.dispose()
  })

  const decide = (id: string, decision: 'approved' | 'denied') =>
    decideApproval(deputy.deps, { id, decision, actor: alice, shownDigest: 'sha-256:test' })

  const text = (result: unknown) =>
    (result as { content: { text?: string }[] }).content[0]?.text ?? ''

  async function pendingFor(tool: string) {
    const pending = await deputy.deps.approvals.listForUser(alice.id, 'pending')
    return pending.filter((request) => request.authorizationDetails[0]?.tool === tool)
  }

  async function recordsOf(approvalId: string | undefined): Promise<AuditRecord[]> {
    const records = await tailAudit(deputy.deps.store, { limit: 1000 })
    return records.filter(
      (record) => (record.data as { approvalId?: string } | null)?.approvalId === approvalId,
    )
  }

  it('answers pending with the page; once approved, the identical call is forwarded once with exactly those arguments', async () => {
    const first = await client.callTool({ name: 'echo', arguments: { text: 'hello' } })
    const [request] = await pendingFor('echo')
    expect(request?.bindingMessage).toBe('Echo hello')
    expect(request?.authorizationDetails).toEqual([
      { type: 'tool_call', server: resource, tool: 'echo', arguments: { text: 'hello' } },
    ])
    expect(first.isError).toBe(true)
    expect(first._meta?.[APPROVAL_META_KEY]).toMatchObject({
      status: 'pending',
      approvalId: request?.id,
      approvalUri: `${issuer}/approvals/${request?.id}`,
    })

    await decide(request?.id as string, 'approved')
    const ran = await client.callTool({ name: 'echo', arguments: { text: 'hello' } })
    expect(text(ran)).toBe('echo: hello')
    expect((await recordsOf(request?.id)).map((record) => [record.type, record.reason])).toEqual([
      ['tool.refused', 'approval_pending'],
      ['token.issued', null],
      ['tool.allowed', null],
      ['tool.called', null],
    ])

    // Used once: the same call again asks anew.
    const again = await client.callTool({ name: 'echo', arguments: { text: 'hello' } })
    expect(again._meta?.[APPROVAL_META_KEY]).toMatchObject({ status: 'pending' })
    const [fresh] = await pendingFor('echo')
    expect(fresh?.id).not.toBe(request?.id)
    await decide(fresh?.id as string, 'denied')
    const declined = await client.callTool({ name: 'echo', arguments: { text: 'hello' } })
    expect(declined.isError).toBe(true)
    expect(text(declined)).toBe('Alice declined this call to echo.')
    expect((await recordsOf(fresh?.id)).map((record) => record.type)).toEqual([
      'tool.refused',
      'tool.refused',
    ])
  })

  it('an approval covers only its own arguments: a changed call is a new request, and the approved one still runs once', async () => {
    await client.callTool({ name: 'echo', arguments: { text: 'pay 10' } })
    const [approved] = await pendingFor('echo')
    await decide(approved?.id as string, 'approved')
    const changed = await client.callTool({ name: 'echo', arguments: { text: 'pay 1000' } })
    expect(changed.isError).toBe(true)
    expect(changed._meta?.[APPROVAL_META_KEY]).toMatchObject({ status: 'pending' })
    const [other] = await pendingFor('echo')
    expect(other?.id).not.toBe(approved?.id)
    expect(other?.authorizationDetails[0]?.arguments).toEqual({ text: 'pay 1000' })
    // Nothing was forwarded for the changed call: only its refusal is on record.
    expect((await recordsOf(other?.id)).map((record) => [record.type, record.reason])).toEqual([
      ['tool.refused', 'approval_pending'],
    ])
    const ran = await client.callTool({ name: 'echo', arguments: { text: 'pay 10' } })
    expect(text(ran)).toBe('echo: pay 10')
    await decide(other?.id as string, 'denied')
  })

  it('asks only for calls over the limit the rule names', async () => {
    const small = await client.callTool({ name: 'count', arguments: { n: 2 } })
    expect(small.isError).toBeFalsy()
    expect(await pendingFor('count')).toHaveLength(0)
    const large = await client.callTool({ name: 'count', arguments: { n: 4 } })
    expect(large._meta?.[APPROVAL_META_KEY]).toMatchObject({ status: 'pending' })
    const [request] = await pendingFor('count')
    expect(request?.bindingMessage).toBe('Run count')
    await decide(request?.id as string, 'denied')
  })

  describe('with a client that asked for progress (Streamable HTTP answers as an event stream)', () => {
    let oneSecond: Gateway | undefined
    beforeAll(() => {
      oneSecond = gateway
      gateway = gatewayWaiting(5)
    })
    afterAll(async () => {
      await gateway?.close()
      gateway = oneSecond
    })

    it('tells it the call waits for the person; once approved, passes the upstream’s stream on', async () => {
      const heard: { progress: number; total?: number; message?: string }[] = []
      let decided: Promise<string | undefined> | undefined
      const result = await client.callTool(
        { name: 'count', arguments: { n: 5 } },
        {
          onprogress: (progress) => {
            heard.push(progress)
            // Alice decides while the call waits, as she would in her inbox.
            decided ??= pendingFor('count').then(async ([request]) => {
              await decide(request?.id as string, 'approved')
              return request?.id
            })
          },
        },
      )
      const approvalId = await decided
      expect(text(result)).toBe('counted to 5')
      const waiting = heard.filter((progress) => progress.total === undefined)
      expect(waiting.length).toBeGreaterThan(0)
      expect(waiting).toEqual(
        waiting.map((_, index) => ({
          progress: index + 1,
          message: "waiting for Alice's approval",
        })),
      )
      // The upstream's own progress follows, in its order, after the gateway's, and the count
      // goes on increasing (MCP: progress MUST increase with each notification) where the
      // upstream's started again from 1.
      const offset = waiting.length
      expect(heard.slice(waiting.length)).toEqual(
        [1, 2, 3, 4, 5].map((progress) => ({ progress: progress + offset, total: 5 + offset })),
      )
      const values = heard.map((progress) => progress.progress)
      expect(values).toEqual([...values].sort((a, b) => a - b))
      expect(new Set(values).size).toBe(values.length)
      expect((await recordsOf(approvalId)).map((record) => record.type)).toEqual([
        'token.issued',
        'tool.allowed',
        'tool.called',
      ])
    })

    it('still undecided when the wait ends: progress, then the pending answer', async () => {
      const heard: { message?: string }[] = []
      const result = await client.callTool(
        { name: 'echo', arguments: { text: 'later' } },
        { onprogress: (progress) => heard.push(progress) },
      )
      expect(heard.length).toBeGreaterThan(0)
      expect(new Set(heard.map((progress) => progress.message))).toEqual(
        new Set(["waiting for Alice's approval"]),
      )
      const [request] = await pendingFor('echo')
      expect(result._meta?.[APPROVAL_META_KEY]).toMatchObject({
        status: 'pending',
        approvalId: request?.id,
      })
      await decide(request?.id as string, 'denied')
    })
  })

  it('answers a client that takes only JSON with JSON, progress token or not', async () => {
    const response = await fetch(resource, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'mcp-session-id': transport.sessionId as string,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'json' }, _meta: { progressToken: 'p' } },
      }),
    })
    expect(response.headers.get('content-type')).toContain('application/json')
    const answer = (await response.json()) as { id: number; result: { _meta: unknown } }
    expect(answer.id).toBe(7)
    expect(answer.result._meta).toMatchObject({ [APPROVAL_META_KEY]: { status: 'pending' } })
    const [request] = await pendingFor('echo')
    await decide(request?.id as string, 'denied')
  })
})

describe('deputy gateway refuses approvals it cannot ask for, at start, with one line', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-gateway-approval-'))
    writeFileSync(
      join(dir, 'rules.json'),
      JSON.stringify({ tools: { buy: { approval: { over: { quantity: 10 } } } } }),
    )
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const gateway = (flags: string[], env: Record<string, string> = {}) =>
    deputyCli(
      [
        'gateway',
        '--issuer',
        'http://127.0.0.1:1',
        '--upstream',
        'http://127.0.0.1:2/mcp',
        '--port',
        '0',
        ...flags,
      ],
      { env },
    )

  it.each([
    [['--rules', 'RULES'], {}, /the rules ask for approvals/],
    [['--approvals-client-id', 'gw'], {}, /DEPUTY_GATEWAY_CIBA_CLIENT_SECRET/],
    [['--approval-wait', '5'], {}, /--approval-wait needs --approvals-client-id/],
    [
      ['--approvals-client-id', 'gw', '--approval-wait', 'soon'],
      { DEPUTY_GATEWAY_CIBA_CLIENT_SECRET: 's3cret' },
      /--approval-wait must be a positive whole number/,
    ],
  ] as const)('%j', (flags, env, problem) => {
    const result = gateway(
      flags.map((flag) => (flag === 'RULES' ? join(dir, 'rules.json') : flag)),
      env,
    )
    expect(result.status).toBe(1)
    const said = lines(result.stderr)
    expect(said).toHaveLength(1)
    expect(said[0]).toMatch(problem)
  })
})
