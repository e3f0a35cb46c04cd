import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { splitCommand, stdioUpstream } from '../../src/gateway/upstream-stdio.js'
import { startGateway, startIssuer } from './helpers.js'

const UPSTREAM = fileURLToPath(new URL('./fixtures/upstream.mjs', import.meta.url))

let issuer: Awaited<ReturnType<typeof startIssuer>>
let gw: Awaited<ReturnType<typeof startGateway>>

beforeAll(async () => {
  issuer = await startIssuer()
  gw = await startGateway({
    issuer: issuer.issuer,
    upstream: stdioUpstream({ command: process.execPath, args: [UPSTREAM] }),
    rules: { tools: { audit_report: { roles: ['auditor'] } } },
  })
})

afterAll(async () => {
  await gw?.close()
  await issuer?.close()
})

async function connect(): Promise<Client> {
  const token = await issuer.token({ aud: gw.resource })
  const client = new Client(
    { name: 'stdio-test', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  )
  client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: 'accept',
    content: { name: 'Ada' },
  }))
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gw.resource), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  )
  return client
}

const text = (result: unknown) =>
  ((result as { content: { text?: string }[] }).content[0] as { text?: string }).text

describe('stdio upstream (--upstream-command)', () => {
  it('refuses a request without a token before starting any process', async () => {
    const response = await fetch(gw.resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
    })
    expect(response.status).toBe(401)
  })

  it('bridges tools, resources, prompts, notifications, progress and elicitation to the child', async () => {
    const client = await connect()
    try {
      expect(client.getServerVersion()?.name).toBe('gateway-test-upstream')
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe(
        'echo: hi',
      )
      expect((await client.readResource({ uri: 'note://hello' })).contents[0]).toMatchObject({
        text: 'hello, note',
      })
      const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'Bo' } })
      expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Please greet Bo' })
      const logs: unknown[] = []
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs.push(n.params.data)
      })
      const progress: number[] = []
      const counted = await client.callTool({ name: 'count', arguments: { n: 2 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      })
      expect(text(counted)).toBe('counted to 2')
      expect(progress).toEqual([1, 2])
      expect(logs).toEqual(['counting to 2'])
      expect(text(await client.callTool({ name: 'ask_name', arguments: {} }))).toBe('hello Ada')
    } finally {
      await client.close()
    }
  })

  it('runs one child per session and applies the rules in front of it', async () => {
    const first = await connect()
    const second = await connect()
    try {
      const a = text(await first.callTool({ name: 'whoami', arguments: {} }))
      const b = text(await second.callTool({ name: 'whoami', arguments: {} }))
      expect(a).toMatch(/^\d+$/)
      expect(b).toMatch(/^\d+$/)
      expect(a).not.toBe(b)
      expect(a).not.toBe(String(process.pid))
      const refused = await first.callTool({ name: 'audit_report', arguments: {} })
      expect(refused.isError).toBe(true)
      expect(gw.events.at(-1)).toMatchObject({ tool: 'audit_report', decision: 'deny' })
    } finally {
      await first.close()
      await second.close()
    }
  })
})

describe('splitCommand', () => {
  it('splits words like a shell, with quotes and escapes, and runs no shell', () => {
    expect(splitCommand(`node "my server.js" --name 'a b' x\\ y`)).toEqual([
      'node',
      'my server.js',
      '--name',
      'a b',
      'x y',
    ])
    expect(splitCommand('echo $HOME | cat')).toEqual(['echo', '$HOME', '|', 'cat'])
    expect(() => splitCommand('node "unterminated')).toThrow(/unterminated/)
  })
})
