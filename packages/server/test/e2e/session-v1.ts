import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Visit } from '../helpers/sign-in.js'
import { authorizeInBrowser, type Exchange, recordingFetch } from './fixture.js'
import type { LoopbackOAuthProvider } from './provider.js'
import type { ToolAnswer } from './session-v2.js'

/**
 * An MCP host built on the v1 SDK (`@modelcontextprotocol/sdk`, spec 2025-11-25): the same
 * person-facing steps as the v2 one, through v1's transport and OAuth support.
 */
export class V1Session {
  readonly log: Exchange[] = []
  readonly authorizations: Visit[][] = []
  private client: Client | undefined
  private transport: StreamableHTTPClientTransport | undefined
  private readonly mcpUrl: string
  readonly provider: LoopbackOAuthProvider
  private readonly person: { email: string; password: string }

  constructor(
    mcpUrl: string,
    provider: LoopbackOAuthProvider,
    person: { email: string; password: string },
  ) {
    this.mcpUrl = mcpUrl
    this.provider = provider
    this.person = person
  }

  private newTransport(): StreamableHTTPClientTransport {
    return new StreamableHTTPClientTransport(new URL(this.mcpUrl), {
      authProvider: this.provider,
      fetch: recordingFetch(this.log),
    })
  }

  private async authorize(transport: StreamableHTTPClientTransport): Promise<void> {
    const { callback, visits } = await authorizeInBrowser(
      this.provider.takeAuthorizationUrl(),
      this.provider.redirectUri,
      this.person,
    )
    this.authorizations.push(visits)
    // RFC 9207: the callback names the issuer it came from.
    if (callback.searchParams.get('iss') === null) throw new Error('callback without iss')
    await transport.finishAuth(callback.searchParams.get('code') ?? '')
  }

  /** Connects, signing in through the browser if the server says 401. */
  async connect(): Promise<void> {
    const transport = this.newTransport()
    const client = new Client({ name: 'deputy-e2e-v1', version: '1.0.0' })
    try {
      await client.connect(transport)
      this.client = client
      this.transport = transport
      return
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err
    }
    await this.authorize(transport)
    await transport.close()
    this.transport = this.newTransport()
    this.client = new Client({ name: 'deputy-e2e-v1', version: '1.0.0' })
    await this.client.connect(this.transport)
  }

  async listTools(): Promise<string[]> {
    if (!this.client) throw new Error('connect() first')
    const { tools } = await this.client.listTools()
    return tools.map((tool) => tool.name)
  }

  async call(name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
    const { client, transport } = this
    if (!client || !transport) throw new Error('connect() first')
    let result: Awaited<ReturnType<Client['callTool']>>
    try {
      result = await client.callTool({ name, arguments: args })
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err
      await this.authorize(transport)
      result = await client.callTool({ name, arguments: args })
    }
    const content = (result.content ?? []) as { type: string; text?: string }[]
    return {
      text: content.map((block) => block.text ?? '').join('\n'),
      isError: result.isError === true,
    }
  }

  async close(): Promise<void> {
    await this.client?.close()
  }
}
