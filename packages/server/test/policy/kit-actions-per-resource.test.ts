import type { AddressInfo } from 'node:net'
import { cedarPolicy, jwtVerifier, type ProtectedMcpServer, protectMcpServer } from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { Actor } from '../../src/audit/types.js'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 9 §9 through the MCP kit: two MCP servers behind `@deputy/mcp`, both with a `deleteFile`
// tool guarded by `cedarPolicy(deputy.deps.policy)`, each declared as its own action. The
// official MCP client calls them on loopback with access tokens Deputy minted for each server;
// each call is decided by its own server's policies, whichever server declared last.

const ADMIN: Actor = { type: 'system', id: 'test' }

interface Running {
  resource: string
  kit: ProtectedMcpServer
  deleted: string[]
  close(): Promise<void>
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `two MCP servers with a same-named tool, through cedarPolicy (issue 9 §9, ${dialect.name})`,
    () => {
      let deputy: TestDeputy
      let a: Running
      let b: Running
      const clients: Client[] = []

      /** An MCP server with `deleteFile` on loopback; `force` is an argument of B's alone. */
      async function start(withForce: boolean): Promise<Running> {
        const deleted: string[] = []
        let kit: ProtectedMcpServer | undefined
        const server: ServerType = await new Promise((resolve) => {
          const started = serve(
            {
              fetch: (request) => (kit as ProtectedMcpServer).fetch(request),
              hostname: '127.0.0.1',
              port: 0,
            },
            () => resolve(started),
          )
        })
        const resource = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
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
          server: { name: withForce ? 'files-b' : 'files-a', version: '1.0.0' },
        })
        const inputSchema = withForce
          ? z.strictObject({ path: z.string(), force: z.boolean() })
          : z.strictObject({ path: z.string() })
        kit.tool(
          'deleteFile',
          { policy: cedarPolicy(deputy.deps.policy) },
          { description: 'Deletes a file', inputSchema },
          ({ path }) => {
            deleted.push(path)
            return { content: [{ type: 'text', text: `deleted ${path}` }] }
          },
        )
        await deputy.deps.resources.put({ uri: resource, scopes: {} }, ADMIN)
        const running = kit
        return {
          resource,
          kit: running,
          deleted,
          close: async () => {
            await running.close()
            await new Promise<void>((done) => server.close(() => done()))
          },
        }
      }

      async function connect(server: Running): Promise<Client> {
        const user = await deputy.deps.users.findByEmail('alice@example.com')
        const client = (await deputy.deps.clients.list()).find((c) => c.name === 'Agent')
        const resource = await deputy.deps.resources.get(server.resource)
        if (!user || !client || !resource) throw new Error('fixture missing')
        const { token } = await mintAccessToken(deputy.deps, {
          client,
          user,
          resource,
          scopes: [],
          grantId: null,
        })
        const mcp = new Client({ name: 'kit-test', version: '1.0.0' })
        await mcp.connect(
          new StreamableHTTPClientTransport(new URL(server.resource), {
            authProvider: { token: async () => token },
          }),
        )
        clients.push(mcp)
        return mcp
      }

      const deleteFile = async (client: Client, args: Record<string, unknown>) => {
        const result = await client.callTool({ name: 'deleteFile', arguments: args })
        const [first] = result.content as { text: string }[]
        return { text: first?.text ?? '', isError: result.isError === true }
      }

      beforeAll(async () => {
        deputy = await startTestDeputy({
          database: await dialect.create(),
          config: { policyRefreshIntervalMs: 60_000 },
        })
        await deputy.deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        await deputy.deps.clients.register(
          { name: 'Agent', redirectUris: ['https://agent.example/cb'], public: true },
          ADMIN,
        )
        a = await start(false)
        b = await start(true)
        // A declares first, B later.
        await deputy.deps.policies.declareActions(a.kit.actions(), ADMIN)
        await deputy.deps.policies.declareActions(b.kit.actions(), ADMIN)
        await deputy.deps.policies.put(
          `@id("a.tmp-only")
permit (principal, action == Deputy::Action::"${a.resource}#deleteFile", resource)
when { context.arguments.path like "/tmp/*" };

@id("b.unforced")
@message("B deletes nothing by force.")
permit (principal, action == Deputy::Action::"${b.resource}#deleteFile", resource)
unless { context.arguments.force };`,
          ADMIN,
        )
        await deputy.deps.policy.refresh()
      })
      afterAll(async () => {
        await Promise.all(clients.map((client) => client.close()))
        await a?.close()
        await b?.close()
        await deputy?.dispose()
      })

      it("each server's deleteFile is decided by its own policies, whichever server declared last", async () => {
        expect(
          (await deputy.deps.policies.actions())
            .filter((action) => action.name === 'deleteFile')
            .map((action) => action.id),
        ).toEqual([`${a.resource}#deleteFile`, `${b.resource}#deleteFile`].sort())

        const toA = await connect(a)
        expect(await deleteFile(toA, { path: '/tmp/scratch' })).toEqual({
          text: 'deleted /tmp/scratch',
          isError: false,
        })
        // B's permit (no force) does not open A's tool outside /tmp.
        expect(await deleteFile(toA, { path: '/etc/passwd' })).toEqual({
          text: 'This call to deleteFile was refused by policy.',
          isError: true,
        })

        const toB = await connect(b)
        // A's /tmp rule does not reach B: B allows any path without force...
        expect(await deleteFile(toB, { path: '/etc/hosts', force: false })).toEqual({
          text: 'deleted /etc/hosts',
          isError: false,
        })
        // ...and refuses a forced delete, even under /tmp, which A would have allowed.
        expect((await deleteFile(toB, { path: '/tmp/scratch', force: true })).isError).toBe(true)

        expect(a.deleted).toEqual(['/tmp/scratch'])
        expect(b.deleted).toEqual(['/etc/hosts'])
      })

      it("every policy.decided record names the called server's own action and its own tool", async () => {
        const decisions = await deputy.deps.db
          .selectFrom('audit_events')
          .select(['target', 'data'])
          .where('type', '=', 'policy.decided')
          .orderBy('seq')
          .execute()
        // Every decision names the action of the server that was called, and its own tool.
        for (const row of decisions) {
          const data = JSON.parse(String(row.data)) as { action: string }
          const target = JSON.parse(String(row.target)) as { id: string }
          expect(target.id).toBe(data.action)
        }
        expect(
          decisions.map((row) => (JSON.parse(String(row.data)) as { action: string }).action),
        ).toEqual([
          `${a.resource}#deleteFile`,
          `${a.resource}#deleteFile`,
          `${b.resource}#deleteFile`,
          `${b.resource}#deleteFile`,
        ])
      })
    },
  )
}
