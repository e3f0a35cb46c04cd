import { createShopMcpServer, createSqlOrderBook } from '@deputy/example-mcp-shop'
import {
  jwtVerifier,
  memoryStateStore,
  type ProtectedMcpServer,
  protectMcpServer,
} from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import { freePort } from '../interop/fixture.js'
import {
  connectThroughLink,
  PROVIDER,
  SYSTEM,
  startVaultFixture,
  type VaultFixture,
} from './vault-fixture.js'

// Issue 12 §6: `ctx.connections.token()` inside a tool of an MCP server protected by
// `@deputy/mcp`, called by the official MCP SDK client. The person has not connected the account:
// the tool's answer is the connect link (a URL-mode elicitation for a client that declared it);
// the person follows it (cookie jar through Deputy's /connect flow and the provider's login); the
// call tried again returns what the stand-in API says about the person. Nothing of Deputy, the
// vault or the kit is replaced; the refresh token never reaches the MCP client.

describe('@deputy/mcp ctx.connections through Deputy’s vault (issue 12 §6)', () => {
  let f: VaultFixture
  let issuer: string
  let mcpClient: { clientId: string; secret: string }
  const servers: ServerType[] = []
  const clients: Client[] = []

  beforeAll(async () => {
    const port = await freePort()
    issuer = `http://127.0.0.1:${port}`
    f = await startVaultFixture({ config: { issuer, port }, port })
  }, 60_000)

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()))
    for (const running of servers) await new Promise((done) => running.close(done))
    await f?.close()
  })

  /** An MCP server with `whoami_upstream` (the stand-in API's /me as the person), behind the kit. */
  async function startKit(shop = false): Promise<{ resource: string; kit: ProtectedMcpServer }> {
    const port = await freePort()
    const resource = `http://127.0.0.1:${port}/mcp`
    const { deps } = f.deputy
    await deps.resources.put(
      { uri: resource, scopes: { repos: 'See your repositories', 'shop:read': 'See the shop' } },
      SYSTEM,
    )
    const created = await deps.clients.register(
      {
        name: `Repo MCP server ${port}`,
        grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE],
        allowedResources: [resource],
      },
      SYSTEM,
    )
    mcpClient = { clientId: created.client.clientId, secret: created.clientSecret as string }
    const provider = await deps.providers.get(PROVIDER)
    await deps.providers.update(
      PROVIDER,
      { allowedClients: [...(provider?.allowedClients ?? []), mcpClient.clientId] },
      SYSTEM,
    )
    const connections = { issuer, clientId: mcpClient.clientId, clientSecret: mcpClient.secret }
    const verifier = jwtVerifier({ issuer, audience: resource, jwksUri: `${issuer}/jwks` })
    const kit = shop
      ? createShopMcpServer({
          resource,
          issuer,
          verifier,
          stateStore: memoryStateStore(),
          orderBook: createSqlOrderBook({ db: deps.db, resource }),
          upstream: { connections, provider: PROVIDER, whoAmIUrl: `${f.api.url}/me` },
        })
      : protectMcpServer({
          resource,
          authorizationServers: [issuer],
          verifier: jwtVerifier({ issuer, audience: resource, jwksUri: `${issuer}/jwks` }),
          server: { name: 'repos', version: '1.0.0' },
          connections: { issuer, clientId: mcpClient.clientId, clientSecret: mcpClient.secret },
        })
    if (!shop)
      kit.tool(
        'whoami_upstream',
        { scopes: ['repos'] },
        { description: 'Who you are at Corp' },
        async (_args, ctx) => {
          const token = await ctx.connections.token(PROVIDER, { scope: 'openid' })
          const me = await fetch(`${f.api.url}/me`, {
            headers: { authorization: `Bearer ${token}` },
          })
          return {
            content: [
              {
                type: 'text',
                text: `You are ${((await me.json()) as { sub: string }).sub} at Corp`,
              },
            ],
          }
        },
      )
    const running = await new Promise<ServerType>((resolve) => {
      const started = serve({ fetch: kit.fetch, hostname: '127.0.0.1', port }, () =>
        resolve(started),
      )
    })
    servers.push(running)
    return { resource, kit }
  }

  async function connect(resource: string, onUrl?: (url: string) => Promise<void>) {
    const { deps } = f.deputy
    const agent = await deps.clients.register(
      { name: 'Agent', redirectUris: ['http://127.0.0.1:7/callback'] },
      SYSTEM,
    )
    const alice = await deps.users.findById(f.aliceId)
    const target = await deps.resources.get(resource)
    if (!alice || !target) throw new Error('fixture missing')
    const { token } = await mintAccessToken(deps, {
      client: agent.client,
      user: alice,
      resource: target,
      scopes: ['repos', 'shop:read'],
      grantId: null,
    })
    const client = new Client(
      { name: 'repo-agent', version: '1.0.0' },
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
    const seen: string[] = []
    await client.connect(
      new StreamableHTTPClientTransport(new URL(resource), {
        authProvider: { token: async () => token },
        fetch: async (input, init) => {
          const response = await fetch(input, init)
          seen.push(await response.clone().text())
          return response
        },
      }),
    )
    clients.push(client)
    return { client, seen }
  }

  function text(result: unknown): string {
    const content = (result as { content?: { text?: string }[] }).content ?? []
    return content.map((block) => block.text ?? '').join('\n')
  }

  async function followLink(link: string): Promise<void> {
    const url = new URL(link)
    expect(`${url.origin}${url.pathname}`).toBe(`${issuer}/connect/${PROVIDER}`)
    const back = await connectThroughLink(f.browser, `${url.pathname}${url.search}`)
    expect(back.status).toBe(303)
  }

  it('without URL-mode elicitation: a tool error with the connect link; after connecting, the retry gets the data', async () => {
    const { resource } = await startKit()
    const { client, seen } = await connect(resource)
    const first = await client.callTool({ name: 'whoami_upstream', arguments: {} })
    expect(first.isError).toBe(true)
    const link = /(http:\/\/\S+\/connect\/\S+?) and then try again/.exec(text(first))?.[1]
    expect(link).toBeDefined()
    expect(text(first)).toMatch(/needs your corp account: connect it at/)
    await followLink(link as string)
    const second = await client.callTool({ name: 'whoami_upstream', arguments: {} })
    expect(second.isError).toBeFalsy()
    expect(text(second)).toBe('You are alice-sub at Corp')
    // Nothing the MCP client received holds a token the provider issued.
    const received = seen.join('\n')
    for (const value of f.upstream.tokenValues('alice-sub')) expect(received).not.toContain(value)
  })

  it('with URL-mode elicitation: the client is asked to open the connect link, and its retry gets the data', async () => {
    // A fresh start: Alice disconnects, so she must connect again.
    await f.deputy.deps.vault.disconnect(f.aliceId, PROVIDER, { type: 'user', id: f.aliceId })
    const { resource } = await startKit()
    const opened: string[] = []
    const { client, seen } = await connect(resource, async (url) => {
      opened.push(url)
      await followLink(url)
    })
    const result = await client.callTool({ name: 'whoami_upstream', arguments: {} })
    expect(opened).toHaveLength(1)
    expect(result.isError).toBeFalsy()
    expect(text(result)).toBe('You are alice-sub at Corp')
    const received = seen.join('\n')
    for (const value of f.upstream.tokenValues('alice-sub')) expect(received).not.toContain(value)
  })

  it('mcp.shop with a provider configured: whoAmIUpstream asks the stand-in API as the person', async () => {
    const { resource } = await startKit(true)
    const { client } = await connect(resource, async (url) => {
      await followLink(url)
    })
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name)).toContain('whoAmIUpstream')
    const result = await client.callTool({ name: 'whoAmIUpstream', arguments: {} })
    expect(result.isError).toBeFalsy()
    expect(JSON.parse(text(result))).toMatchObject({ sub: 'alice-sub' })
  })
})
