import type { AddressInfo } from 'node:net'
import { cedarPolicy, jwtVerifier, type ProtectedMcpServer, protectMcpServer } from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import type { User } from '../../src/identity/users.js'
import { toolCallAuditor } from '../../src/mcp-state/audit-bridge.js'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { type Client as OAuthClient, TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import type { Resource } from '../../src/oauth/resources.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 13 §1 through the MCP kit: an MCP server behind `@deputy/mcp` whose tool is guarded by
// Cedar policies on the delegation chain (`context.chain`, `context.depth`): "at most two hops"
// and "agent C only through agent B". The tokens come from real exchanges at /token; the tool
// sees the chain as `identity.actors`, and the kit's records and `policy.decided` carry it.

const ADMIN: Actor = { type: 'system', id: 'test' }
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const R_A = 'http://127.0.0.1:9/a'
const R_B = 'http://127.0.0.1:9/b'
const R_C = 'http://127.0.0.1:9/c'

interface Registered {
  client: OAuthClient
  basic: string
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `Cedar policies on the delegation chain, through the MCP kit (${dialect.name})`,
    () => {
      let deputy: TestDeputy
      let server: ServerType
      let kit: ProtectedMcpServer
      let resource: string
      let alice: User
      let agent: Registered
      let first: Registered
      let b: Registered
      let c: Registered
      const mcpClients: Client[] = []

      const register = async (name: string, input: Record<string, unknown>) => {
        const created = await deputy.deps.clients.register({ name, ...input }, ADMIN)
        return {
          client: created.client,
          basic: `Basic ${btoa(`${created.client.clientId}:${created.clientSecret}`)}`,
        }
      }

      beforeAll(async () => {
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { policyRefreshIntervalMs: 60_000 },
        })
        const { deps } = deputy
        server = await new Promise((resolve) => {
          const started = serve(
            { fetch: (request) => kit.fetch(request), hostname: '127.0.0.1', port: 0 },
            () => resolve(started),
          )
        })
        resource = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
        const issuer = deputy.config.issuer
        kit = protectMcpServer({
          resource,
          authorizationServers: [issuer],
          verifier: jwtVerifier({
            issuer,
            audience: resource,
            jwksUri: `${issuer}/jwks`,
            fetch: (input, init) => Promise.resolve(deputy.app.request(input, init)),
          }),
          server: { name: 'chain', version: '1.0.0' },
          audit: toolCallAuditor({ audit: deps.audit }),
        })
        kit.tool(
          'whoami',
          { policy: cedarPolicy(deps.policy) },
          { description: 'Says who acts' },
          (_args, { identity }) => ({
            content: [{ type: 'text', text: JSON.stringify(identity.actors) }],
          }),
        )
        for (const uri of [R_A, R_B, R_C, resource])
          await deps.resources.put({ uri, scopes: { use: 'Use' } }, ADMIN)
        alice = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        agent = await register('Agent', { redirectUris: ['http://127.0.0.1:7/cb'] })
        const exchanger = (name: string, served: string) =>
          register(name, { grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE], allowedResources: [served] })
        first = await exchanger('First', R_A)
        b = await exchanger('B', R_B)
        c = await exchanger('C', R_C)
        await deps.delegationRules.set(first.client.clientId, { resources: [R_B] }, ADMIN)
        await deps.delegationRules.set(b.client.clientId, { resources: [R_C, resource] }, ADMIN)
        await deps.delegationRules.set(c.client.clientId, { resources: [resource] }, ADMIN)
        await deps.policies.declareActions(kit.actions(), ADMIN)
        const action = `Deputy::Action::"${resource}#whoami"`
        await deps.policies.put(
          `@id("anyone")
permit (principal, action == ${action}, resource);

@id("at-most-two-hops")
@message("At most two agents may stand between you and this tool.")
forbid (principal, action == ${action}, resource) when { context.depth > 2 };

@id("c-only-through-b")
@message("C acts here only for B.")
forbid (principal, action == ${action}, resource)
when { context has agent && context.agent == Deputy::Agent::"${c.client.clientId}" &&
       !context.chain.contains("${b.client.clientId}") };`,
          ADMIN,
        )
      }, 60_000)

      afterAll(async () => {
        for (const client of mcpClients) await client.close()
        await kit?.close()
        await new Promise<void>((done) => (server ? server.close(() => done()) : done()))
        await deputy?.dispose()
      })

      async function personToken(client: OAuthClient, uri: string): Promise<string> {
        const minted = await mintAccessToken(deputy.deps, {
          client,
          user: alice,
          resource: (await deputy.deps.resources.get(uri)) as Resource,
          scopes: ['use'],
          grantId: null,
        })
        return minted.token
      }

      async function exchanged(as: Registered, subject: string, to: string): Promise<string> {
        const response = await deputy.app.request('/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: as.basic },
          body: new URLSearchParams({
            grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
            subject_token: subject,
            subject_token_type: ACCESS_TOKEN_TYPE,
            resource: to,
          }).toString(),
        })
        const body = (await response.json()) as Record<string, string>
        expect(response.status, JSON.stringify(body)).toBe(200)
        return body.access_token as string
      }

      async function whoami(token: string): Promise<{ text: string; isError: boolean }> {
        const mcp = new Client({ name: 'chain-test', version: '1.0.0' })
        await mcp.connect(
          new StreamableHTTPClientTransport(new URL(resource), {
            authProvider: { token: async () => token },
          }),
        )
        mcpClients.push(mcp)
        const result = await mcp.callTool({ name: 'whoami', arguments: {} })
        const [content] = result.content as { text: string }[]
        return { text: content?.text ?? '', isError: result.isError === true }
      }

      it('a token nobody exchanged: no actors, allowed', async () => {
        const answer = await whoami(await personToken(agent.client, resource))
        expect(answer).toEqual({ text: '[]', isError: false })
      })

      it('C through B: the tool sees identity.actors [C, B], and the records carry the chain', async () => {
        const viaB = await exchanged(b, await personToken(agent.client, R_B), R_C)
        const viaC = await exchanged(c, viaB, resource)
        const answer = await whoami(viaC)
        expect(answer.isError).toBe(false)
        expect(JSON.parse(answer.text)).toEqual([c.client.clientId, b.client.clientId])
        const chain = [
          { type: 'agent', id: c.client.clientId },
          { type: 'agent', id: b.client.clientId },
        ]
        const rows = await deputy.deps.db
          .selectFrom('audit_events')
          .select(['type', 'delegation_chain', 'decision'])
          .where('type', 'in', ['tool.allowed', 'tool.called', 'policy.decided'])
          .orderBy('seq', 'desc')
          .limit(3)
          .execute()
        expect(rows.map((r) => r.type).sort()).toEqual([
          'policy.decided',
          'tool.allowed',
          'tool.called',
        ])
        for (const row of rows) expect(JSON.parse(row.delegation_chain)).toEqual(chain)
      })

      it('"C only through B": C acting for the person directly is refused', async () => {
        const direct = await exchanged(c, await personToken(agent.client, R_C), resource)
        const answer = await whoami(direct)
        expect(answer.isError).toBe(true)
        expect(answer.text).toMatch(/C acts here only for B/)
      })

      it('"at most two hops": three actors are refused, though Deputy allows three', async () => {
        const hop1 = await exchanged(first, await personToken(first.client, R_A), R_B)
        const hop2 = await exchanged(b, hop1, R_C)
        const hop3 = await exchanged(c, hop2, resource)
        const answer = await whoami(hop3)
        expect(answer.isError).toBe(true)
        expect(answer.text).toMatch(/At most two agents/)
        const refused = await deputy.deps.db
          .selectFrom('audit_events')
          .select(['delegation_chain', 'data'])
          .where('type', '=', 'tool.refused')
          .orderBy('seq', 'desc')
          .executeTakeFirstOrThrow()
        expect(JSON.parse(refused.delegation_chain)).toHaveLength(3)
      })
    },
  )
}
