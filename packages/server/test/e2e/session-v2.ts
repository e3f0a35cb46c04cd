import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from '@modelcontextprotocol/client'
import type { Visit } from '../helpers/sign-in.js'
import { authorizeInBrowser, type Exchange, recordingFetch } from './fixture.js'
import type { LoopbackOAuthProvider } from './provider.js'

/** What a tool answered, as a model would read it. */
export interface ToolAnswer {
  text: string
  isError: boolean
}

/**
 * An MCP host built on the v2 SDK (`@modelcontextprotocol/client`): one connection to the shop
 * for one person, authorizing through the SDK's OAuth support when the server asks for it (401 on
 * connect, 403 insufficient_scope on a call) and sending the person's browser to Deputy's pages.
 */
export class V2Session {
  readonly log: Exchange[] = []
  /** The pages the person saw, per authorization, in order. */
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

  /** The person's part, then the SDK redeems the code (`finishAuth` checks `iss` and `state`). */
  private async authorize(transport: StreamableHTTPClientTransport): Promise<void> {
    const { callback, visits } = await authorizeInBrowser(
      this.provider.takeAuthorizationUrl(),
      this.provider.redirectUri,
      this.person,
    )
    this.authorizations.push(visits)
    await transport.finishAuth(callback.searchParams)
  }

  /** Connects, signing in through the browser if the server says 401. */
  async connect(): Promise<void> {
    const transport = this.newTransport()
    const client = new Client({ name: 'deputy-e2e-v2', version: '1.0.0' })
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
    this.client = new Client({ name: 'deputy-e2e-v2', version: '1.0.0' })
    await this.client.connect(this.transport)
  }

  private connected(): { client: Client; transport: StreamableHTTPClientTransport } {
    if (!this.client || !this.transport) throw new Error('connect() first')
    return { client: this.client, transport: this.transport }
  }

  async listTools(): Promise<string[]> {
    const { tools } = await this.connected().client.listTools()
    return tools.map((tool) => tool.name)
  }

  /** Calls a tool; on a step-up the SDK re-authorizes with the union of scopes and the call is retried. */
  async call(name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
    const { client, transport } = this.connected()
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
