import {
  Client as V2Client,
  StreamableHTTPClientTransport as V2Transport,
  UnauthorizedError as V2UnauthorizedError,
} from '@modelcontextprotocol/client'
import { UnauthorizedError as V1UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Visit } from '../helpers/sign-in.js'
import { authorizeInBrowser, type Exchange, recordingFetch } from './fixture.js'
import type { LoopbackOAuthProvider } from './provider.js'

/** What a tool answered, as a model would read it. */
export interface ToolAnswer {
  text: string
  isError: boolean
  /** The result's `_meta`, when it has one (e.g. a pending approval). */
  meta?: Record<string, unknown>
}

/** What a call may ask of the SDK besides the call itself. */
export interface CallOptions {
  /** MCP progress notifications of this call (the SDK sends a progressToken when given). */
  onprogress?: (progress: { progress: number; message?: string }) => void
  /** The SDK's request timeout restarts at each progress notification. */
  resetTimeoutOnProgress?: boolean
}

/** The parts of an SDK's transport and client a host uses, the same in v1 and v2. */
interface Transport {
  close(): Promise<void>
}
interface SdkClient {
  connect(transport: Transport): Promise<void>
  listTools(): Promise<{ tools: { name: string }[] }>
  callTool(
    request: { name: string; arguments: Record<string, unknown> },
    options?: CallOptions,
  ): Promise<{
    content?: unknown
    isError?: unknown
    _meta?: unknown
  }>
  close(): Promise<void>
}

/** One official SDK as a host sees it: how to connect, and how it takes the callback. */
interface Sdk {
  newClient(): SdkClient
  newTransport(url: URL, provider: LoopbackOAuthProvider, fetch: typeof globalThis.fetch): Transport
  isUnauthorized(err: unknown): boolean
  /** Hands the redirect to the SDK, which redeems the code. */
  finishAuth(transport: Transport, callback: URL): Promise<void>
}

const SDKS: Record<'v1' | 'v2', Sdk> = {
  /** `@modelcontextprotocol/sdk`, spec 2025-11-25. */
  v1: {
    newClient: () =>
      new V1Client({ name: 'deputy-e2e-v1', version: '1.0.0' }) as unknown as SdkClient,
    newTransport: (url, authProvider, fetch) => new V1Transport(url, { authProvider, fetch }),
    isUnauthorized: (err) => err instanceof V1UnauthorizedError,
    async finishAuth(transport, callback) {
      // RFC 9207: the callback names the issuer it came from (v1 does not check it itself).
      if (callback.searchParams.get('iss') === null) throw new Error('callback without iss')
      await (transport as V1Transport).finishAuth(callback.searchParams.get('code') ?? '')
    },
  },
  /** `@modelcontextprotocol/client`: `finishAuth` checks `iss` and `state` itself. */
  v2: {
    newClient: () =>
      new V2Client({ name: 'deputy-e2e-v2', version: '1.0.0' }) as unknown as SdkClient,
    newTransport: (url, authProvider, fetch) => new V2Transport(url, { authProvider, fetch }),
    isUnauthorized: (err) => err instanceof V2UnauthorizedError,
    finishAuth: (transport, callback) =>
      (transport as V2Transport).finishAuth(callback.searchParams),
  },
}

/**
 * An MCP host built on one of the official SDKs (v1 or v2): one connection to the shop for one
 * person, authorizing through the SDK's OAuth support when the server asks for it (401 on
 * connect, 403 insufficient_scope on a call) and sending the person's browser to Deputy's pages.
 */
export class McpSession {
  readonly log: Exchange[] = []
  /** The pages the person saw, per authorization, in order. */
  readonly authorizations: Visit[][] = []
  private client: SdkClient | undefined
  private transport: Transport | undefined
  private readonly sdk: Sdk
  private readonly mcpUrl: string
  readonly provider: LoopbackOAuthProvider
  private readonly person: { email: string; password: string }

  constructor(
    sdk: 'v1' | 'v2',
    mcpUrl: string,
    provider: LoopbackOAuthProvider,
    person: { email: string; password: string },
  ) {
    this.sdk = SDKS[sdk]
    this.mcpUrl = mcpUrl
    this.provider = provider
    this.person = person
  }

  private newTransport(): Transport {
    return this.sdk.newTransport(new URL(this.mcpUrl), this.provider, recordingFetch(this.log))
  }

  /** The person's part in the browser, then the SDK redeems the code. */
  private async authorize(transport: Transport): Promise<void> {
    const { callback, visits } = await authorizeInBrowser(
      this.provider.takeAuthorizationUrl(),
      this.provider.redirectUri,
      this.person,
    )
    this.authorizations.push(visits)
    await this.sdk.finishAuth(transport, callback)
  }

  /** Connects, signing in through the browser if the server says 401. */
  async connect(): Promise<void> {
    const transport = this.newTransport()
    const client = this.sdk.newClient()
    try {
      await client.connect(transport)
      this.client = client
      this.transport = transport
      return
    } catch (err) {
      if (!this.sdk.isUnauthorized(err)) throw err
    }
    await this.authorize(transport)
    await transport.close()
    this.transport = this.newTransport()
    this.client = this.sdk.newClient()
    await this.client.connect(this.transport)
  }

  private connected(): { client: SdkClient; transport: Transport } {
    if (!this.client || !this.transport) throw new Error('connect() first')
    return { client: this.client, transport: this.transport }
  }

  async listTools(): Promise<string[]> {
    const { tools } = await this.connected().client.listTools()
    return tools.map((tool) => tool.name)
  }

  /** Calls a tool; on a step-up the SDK re-authorizes with the union of scopes and the call is retried. */
  async call(
    name: string,
    args: Record<string, unknown> = {},
    options?: CallOptions,
  ): Promise<ToolAnswer> {
    const { client, transport } = this.connected()
    let result: Awaited<ReturnType<SdkClient['callTool']>>
    try {
      result = await client.callTool({ name, arguments: args }, options)
    } catch (err) {
      if (!this.sdk.isUnauthorized(err)) throw err
      await this.authorize(transport)
      result = await client.callTool({ name, arguments: args }, options)
    }
    const content = (result.content ?? []) as { type: string; text?: string }[]
    const meta = result._meta
    return {
      text: content.map((block) => block.text ?? '').join('\n'),
      isError: result.isError === true,
      ...(meta !== null && typeof meta === 'object' && { meta: meta as Record<string, unknown> }),
    }
  }

  async close(): Promise<void> {
    await this.client?.close()
  }
}
