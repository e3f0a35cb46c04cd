import {
  APPROVAL_META_KEY,
  APPROVAL_STATE_PREFIX,
  argumentsDigest,
  jwtVerifier,
  needsApproval,
  type ProtectedMcpServer,
  protectMcpServer,
  type StateStore,
} from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { decideApproval } from '../../src/approvals/decide.js'
import { tailAudit } from '../../src/audit/query.js'
import type { Actor, AuditRecord } from '../../src/audit/types.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { toolCallAuditor } from '../../src/mcp-state/audit-bridge.js'
import { createSqlUserStateStore } from '../../src/mcp-state/index.js'
import { listen, type RunningServer } from '../../src/server.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { freePort } from '../interop/fixture.js'

// Issue 11 §5: a tool call that needs the person's approval, through `@deputy/mcp`. The MCP
// server is a confidential CIBA client of a real Deputy on loopback; the agent is the official
// MCP SDK client; the person decides through Deputy's decision service (the inbox pages call the
// same). Nothing of Deputy or the kit is replaced.

const ADMIN: Actor = { type: 'system', id: 'test' }
const CIBA = 'urn:openid:params:grant-type:ciba'

interface Kit {
  resource: string
  kit: ProtectedMcpServer
  /** The arguments each run of the buy handler got. */
  runs: Record<string, unknown>[]
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `tool calls held for the person’s approval (issue 11 §5) on ${dialect.name}`,
    () => {
      let deputy: TestDeputy
      let server: RunningServer
      let issuer: string
      let alice: Actor & { id: string }
      let mcpClient: { clientId: string; secret: string }
      let agent: { clientId: string; secret: string }
      let state: StateStore
      const servers: ServerType[] = []
      const clients: Client[] = []

      beforeAll(async () => {
        const port = await freePort()
        issuer = `http://127.0.0.1:${port}`
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { issuer, port, backchannelPollIntervalSeconds: 1 },
        })
        server = await listen(deputy, { port, host: '127.0.0.1' })
        const { deps } = deputy
        const user = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        alice = { type: 'user', id: user.id }
        const register = async (name: string) => {
          const created = await deps.clients.register({ name, grantTypes: [CIBA] }, ADMIN)
          return { clientId: created.client.clientId, secret: created.clientSecret as string }
        }
        mcpClient = await register('Trading MCP server')
        agent = await register('Trading agent')
        state = createSqlUserStateStore({ store: deps.store, clock: deps.clock })
      }, 60_000)

      afterAll(async () => {
        await Promise.all(clients.map((client) => client.close()))
        for (const running of servers) await new Promise((done) => running.close(done))
        await server?.shutdown()
        await deputy?.database.dispose()
      })

      /** An MCP server with a `buy` tool that needs approval over 10 shares, behind the kit. */
      async function startKit(waitSeconds: number): Promise<Kit> {
        const port = await freePort()
        const resource = `http://127.0.0.1:${port}/mcp`
        await deputy.deps.resources.put(
          { uri: resource, scopes: { trade: 'Trade stocks for you' }, claimsTemplate: ['name'] },
          ADMIN,
        )
        const runs: Record<string, unknown>[] = []
        const kit = protectMcpServer({
          resource,
          authorizationServers: [issuer],
          verifier: jwtVerifier({ issuer, audience: resource, jwksUri: `${issuer}/jwks` }),
          server: { name: 'trading', version: '1.0.0' },
          state,
          audit: toolCallAuditor({ audit: deputy.deps.audit }),
          approvals: {
            issuer,
            clientId: mcpClient.clientId,
            clientSecret: mcpClient.secret,
            waitSeconds,
          },
        })
        kit.tool(
          'buy',
          {
            scopes: ['trade'],
            approval: {
              when: ({ arguments: args }) => (args as { quantity: number }).quantity > 10,
              bindingMessage: ({ arguments: args }) => {
                const { quantity, symbol } = args as { quantity: number; symbol: string }
                return `Buy ${quantity} ${symbol}`
              },
            },
          },
          { inputSchema: z.object({ symbol: z.string(), quantity: z.number().int().positive() }) },
          async (args, ctx) => {
            runs.push(args)
            // The handler's own progress, counted from its beginning as a handler does.
            const token = ctx.mcpReq._meta?.progressToken
            for (const step of [1, 2]) {
              if (token === undefined) break
              await ctx.mcpReq.notify({
                method: 'notifications/progress',
                params: { progressToken: token, progress: step, total: 2, message: 'buying' },
              })
            }
            return { content: [{ type: 'text', text: `Bought ${args.quantity} ${args.symbol}` }] }
          },
        )
        // A policy's needs_approval (what cedarPolicy answers for a Cedar needs-approval) is met
        // the same way.
        kit.tool(
          'sell',
          { scopes: ['trade'], policy: () => needsApproval() },
          { inputSchema: z.object({ symbol: z.string(), quantity: z.number().int().positive() }) },
          (args) => {
            runs.push({ sold: args })
            return { content: [{ type: 'text', text: `Sold ${args.quantity} ${args.symbol}` }] }
          },
        )
        const running = await new Promise<ServerType>((resolve) => {
          const started = serve({ fetch: kit.fetch, hostname: '127.0.0.1', port }, () =>
            resolve(started),
          )
        })
        servers.push(running)
        return { resource, kit, runs }
      }

      /** Alice's token for the agent at `resource`, from Deputy's CIBA grant (she approves it). */
      async function agentToken(resource: string): Promise<string> {
        const basic = `Basic ${btoa(`${agent.clientId}:${agent.secret}`)}`
        const asked = await fetch(`${issuer}/bc-authorize`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            scope: 'openid trade',
            login_hint: 'alice@example.com',
            resource,
          }),
        })
        const { auth_req_id, approval_id } = (await asked.json()) as Record<string, string>
        await decide(approval_id as string, 'approved')
        const issued = await fetch(`${issuer}/token`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: CIBA, auth_req_id: auth_req_id as string }),
        })
        expect(issued.status).toBe(200)
        return ((await issued.json()) as { access_token: string }).access_token
      }

      async function connect(kit: Kit, onUrl?: (url: string) => Promise<void>): Promise<Client> {
        const token = await agentToken(kit.resource)
        const client = new Client(
          { name: 'trading-agent', version: '1.0.0' },
          {
            versionNegotiation: { mode: { pin: '2026-07-28' } },
            ...(onUrl !== undefined && { capabilities: { elicitation: { url: {} } } }),
          },
        )
        if (onUrl !== undefined) {
          client.setRequestHandler('elicitation/create', async (request) => {
            const params = request.params as { mode?: string; url?: string }
            expect(params.mode).toBe('url')
            await onUrl(params.url as string)
            return { action: 'accept' }
          })
        }
        await client.connect(
          new StreamableHTTPClientTransport(new URL(kit.resource), {
            authProvider: { token: async () => token },
          }),
        )
        clients.push(client)
        return client
      }

      const decide = (id: string, decision: 'approved' | 'denied') =>
        decideApproval(deputy.deps, { id, decision, actor: alice, shownDigest: 'sha-256:test' })

      /** Alice's undecided requests from the MCP server, newest first. */
      async function pendingFromKit() {
        const pending = await deputy.deps.approvals.listForUser(alice.id, 'pending')
        return pending.filter((request) => request.clientId === mcpClient.clientId)
      }

      function text(result: unknown): string {
        const [first] = (result as { content: { text?: string }[] }).content
        return first?.text ?? ''
      }

      async function chain(): Promise<AuditRecord[]> {
        return tailAudit(deputy.deps.store, { limit: 1000 })
      }

      it('a call over the limit waits with progress notifications, then runs once with exactly the approved arguments', async () => {
        const kit = await startKit(600)
        const client = await connect(kit)
        const progress: string[] = []
        const values: number[] = []
        let waiting: () => void = () => {}
        const firstProgress = new Promise<void>((resolve) => {
          waiting = resolve
        })
        const call = client.callTool(
          { name: 'buy', arguments: { quantity: 50, symbol: 'ACME' } },
          {
            onprogress: (update) => {
              progress.push(update.message ?? '')
              values.push(update.progress)
              waiting()
            },
          },
        )
        await firstProgress
        const [request] = await pendingFromKit()
        expect(request?.bindingMessage).toBe('Buy 50 ACME')
        expect(request?.resource).toBe(kit.resource)
        expect(request?.authorizationDetails).toEqual([
          {
            type: 'tool_call',
            server: kit.resource,
            tool: 'buy',
            arguments: { quantity: 50, symbol: 'ACME' },
          },
        ])
        expect(kit.runs).toEqual([])
        await decide(request?.id as string, 'approved')
        const result = await call
        expect(result.isError).toBeFalsy()
        expect(text(result)).toBe('Bought 50 ACME')
        expect(kit.runs).toEqual([{ quantity: 50, symbol: 'ACME' }])
        expect(progress[0]).toBe("waiting for Alice's approval")
        // MCP: progress MUST increase with each notification — the handler's own count, which
        // starts again from 1, follows on from the wait's.
        expect(progress.slice(-2)).toEqual(['buying', 'buying'])
        expect(values.length).toBeGreaterThan(2)
        expect(values).toEqual([...values].sort((a, b) => a - b))
        expect(new Set(values).size).toBe(values.length)

        // The chain: asked, granted, then the call allowed and run, both naming the approval.
        const records = await chain()
        const about = records.filter(
          (record) =>
            record.target?.id === request?.id ||
            (record.data as { approvalId?: string } | null)?.approvalId === request?.id,
        )
        expect(about.map((record) => record.type)).toEqual([
          'approval.requested',
          'approval.granted',
          'token.issued',
          'tool.allowed',
          'tool.called',
        ])
        const called = about.at(-1)
        expect(called?.data).toMatchObject({ outcome: 'success', approvalId: request?.id })
        expect(about[3]?.data).toMatchObject({
          callId: (called?.data as { callId?: string } | undefined)?.callId,
        })
        expect((await verifyAuditChain(deputy.deps.store)).ok).toBe(true)
      })

      it('a call within the limit runs without asking anyone', async () => {
        const kit = await startKit(600)
        const client = await connect(kit)
        const before = (await pendingFromKit()).length
        const result = await client.callTool({
          name: 'buy',
          arguments: { quantity: 5, symbol: 'ACME' },
        })
        expect(text(result)).toBe('Bought 5 ACME')
        expect(await pendingFromKit()).toHaveLength(before)
      })

      it('a call that times out answers pending with the page and the expiry; a later identical call runs once the approval has arrived, and only once', async () => {
        const kit = await startKit(1)
        const client = await connect(kit)
        const args = { quantity: 20, symbol: 'GLOBEX' }
        const first = await client.callTool({ name: 'buy', arguments: args })
        const [request] = await pendingFromKit()
        const page = `${issuer}/approvals/${request?.id}`
        // The kit counts the expiry from before it asked: the person's page never outlives it.
        const expiry = String(
          (first._meta?.[APPROVAL_META_KEY] as { expiresAt?: string } | undefined)?.expiresAt,
        )
        expect(Date.parse(expiry)).toBeLessThanOrEqual(request?.expiresAt as number)
        expect(Date.parse(expiry)).toBeGreaterThan(Date.now())
        expect(first.isError).toBe(true)
        expect(text(first)).toBe(
          `This call to buy is waiting for Alice's approval at ${page}, until ${expiry}. Call it again with the same arguments once they have approved.`,
        )
        expect(first._meta?.[APPROVAL_META_KEY]).toEqual({
          status: 'pending',
          approvalId: request?.id,
          approvalUri: page,
          expiresAt: expiry,
        })
        expect(kit.runs).toEqual([])

        // The same call again before the decision: the same request, still pending.
        const again = await client.callTool({ name: 'buy', arguments: args })
        expect(again._meta?.[APPROVAL_META_KEY]).toMatchObject({ approvalId: request?.id })
        expect((await pendingFromKit()).map((pending) => pending.id)).toEqual([request?.id])

        await decide(request?.id as string, 'approved')
        const ran = await client.callTool({
          name: 'buy',
          arguments: { symbol: 'GLOBEX', quantity: 20 },
        })
        expect(text(ran)).toBe('Bought 20 GLOBEX')
        expect(kit.runs).toEqual([args])

        // Used once: a third identical call needs a new approval.
        const third = await client.callTool({ name: 'buy', arguments: args })
        expect(third.isError).toBe(true)
        const [fresh] = await pendingFromKit()
        expect(fresh?.id).not.toBe(request?.id)
        expect(third._meta?.[APPROVAL_META_KEY]).toMatchObject({ approvalId: fresh?.id })
        expect(kit.runs).toEqual([args])
        await decide(fresh?.id as string, 'denied')
      })

      it("a policy's needs_approval asks the person too, with the default binding message", async () => {
        const kit = await startKit(1)
        const client = await connect(kit)
        const args = { quantity: 3, symbol: 'ACME' }
        const first = await client.callTool({ name: 'sell', arguments: args })
        expect(first._meta?.[APPROVAL_META_KEY]).toMatchObject({ status: 'pending' })
        const [request] = await pendingFromKit()
        expect(request?.bindingMessage).toBe('Run sell')
        await decide(request?.id as string, 'approved')
        const sold = await client.callTool({ name: 'sell', arguments: args })
        expect(text(sold)).toBe('Sold 3 ACME')
        expect(kit.runs).toEqual([{ sold: args }])
      })

      it('a client that supports URL-mode elicitation is sent to the request’s page; its retry runs once approved', async () => {
        const kit = await startKit(1)
        const opened: string[] = []
        const client = await connect(kit, async (url) => {
          opened.push(url)
          // The person opens the page and approves there.
          await decide(url.slice(url.lastIndexOf('/') + 1), 'approved')
        })
        const result = await client.callTool({
          name: 'buy',
          arguments: { quantity: 15, symbol: 'STARK' },
        })
        expect(text(result)).toBe('Bought 15 STARK')
        expect(opened).toHaveLength(1)
        expect(opened[0]).toMatch(new RegExp(`^${issuer}/approvals/[A-Za-z0-9_-]+$`))
        expect(kit.runs).toEqual([{ quantity: 15, symbol: 'STARK' }])
      })

      it('a changed argument is a new request, which the other one’s approval does not cover', async () => {
        const kit = await startKit(1)
        const client = await connect(kit)
        await client.callTool({ name: 'buy', arguments: { quantity: 30, symbol: 'INITECH' } })
        const [asked] = await pendingFromKit()
        await client.callTool({ name: 'buy', arguments: { quantity: 31, symbol: 'INITECH' } })
        const [changed] = await pendingFromKit()
        expect(changed?.id).not.toBe(asked?.id)
        expect(changed?.authorizationDetails[0]?.arguments).toEqual({
          quantity: 31,
          symbol: 'INITECH',
        })

        await decide(asked?.id as string, 'approved')
        const other = await client.callTool({
          name: 'buy',
          arguments: { quantity: 31, symbol: 'INITECH' },
        })
        expect(other._meta?.[APPROVAL_META_KEY]).toMatchObject({
          status: 'pending',
          approvalId: changed?.id,
        })
        expect(kit.runs).toEqual([])
        const approved = await client.callTool({
          name: 'buy',
          arguments: { quantity: 30, symbol: 'INITECH' },
        })
        expect(text(approved)).toBe('Bought 30 INITECH')
        expect(kit.runs).toEqual([{ quantity: 30, symbol: 'INITECH' }])
        await decide(changed?.id as string, 'denied')
      })

      it('a denial is a tool error saying the person declined; the handler never runs', async () => {
        const kit = await startKit(1)
        const client = await connect(kit)
        const args = { quantity: 40, symbol: 'UMBRELLA' }
        await client.callTool({ name: 'buy', arguments: args })
        const [request] = await pendingFromKit()
        await decide(request?.id as string, 'denied')
        const declined = await client.callTool({ name: 'buy', arguments: args })
        expect(declined.isError).toBe(true)
        expect(text(declined)).toBe('Alice declined this call to buy.')
        expect(kit.runs).toEqual([])
        const refused = (await chain()).filter(
          (record) =>
            record.type === 'tool.refused' &&
            (record.data as { approvalId?: string }).approvalId === request?.id,
        )
        expect(refused.map((record) => [record.decision, record.reason])).toEqual([
          ['needs-approval', 'approval_pending'],
          ['deny', 'approval_denied'],
        ])
      })

      it('an approval whose token names other arguments is refused, and nothing runs', async () => {
        const kit = await startKit(1)
        const client = await connect(kit)
        // Alice approves a request for 99 shares, made with the MCP server's own credentials; it is
        // then filed under the call for 60 shares, as a tampered state would have it.
        const basic = `Basic ${btoa(`${mcpClient.clientId}:${mcpClient.secret}`)}`
        const asked = await fetch(`${issuer}/bc-authorize`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            scope: 'openid',
            login_hint: alice.id,
            resource: kit.resource,
            binding_message: 'Buy 99 HOOLI',
            authorization_details: JSON.stringify([
              {
                type: 'tool_call',
                server: kit.resource,
                tool: 'buy',
                arguments: { quantity: 99, symbol: 'HOOLI' },
              },
            ]),
          }),
        })
        const started = (await asked.json()) as Record<string, string | number>
        await decide(started.approval_id as string, 'approved')
        const args = { quantity: 60, symbol: 'HOOLI' }
        const key = `${APPROVAL_STATE_PREFIX}${await argumentsDigest({ sub: alice.id, tool: 'buy', arguments: args })}`
        await state.update({ resource: kit.resource, sub: alice.id }, key, () => ({
          authReqId: started.auth_req_id as string,
          approvalId: started.approval_id as string,
          approvalUri: started.approval_uri as string,
          expiresAt: Date.now() + 600_000,
          interval: 1,
          nextPollAt: 0,
        }))
        const refused = await client.callTool({ name: 'buy', arguments: args })
        expect(refused.isError).toBe(true)
        expect(text(refused)).toBe(
          'This call to buy was refused: the approval given is not for exactly this call.',
        )
        expect(kit.runs).toEqual([])
        const [record] = (await chain()).filter(
          (entry) => entry.type === 'tool.refused' && entry.reason === 'approval_mismatch',
        )
        expect(record?.decision).toBe('deny')
      })
    },
  )
}
