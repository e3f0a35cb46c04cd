import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { splitCommand, stdioUpstream } from '../../src/gateway/upstream-stdio.js'
import { expectCarriedBothWays, gatewayFixture, text } from './helpers.js'

const UPSTREAM = fileURLToPath(new URL('./fixtures/upstream.mjs', import.meta.url))

const f = gatewayFixture({
  upstream: () => stdioUpstream({ command: process.execPath, args: [UPSTREAM] }),
  rules: { tools: { audit_report: { roles: ['auditor'] } } },
})
const { connect } = f

describe('stdio upstream (--upstream-command)', () => {
  it('refuses a request without a token before starting any process', async () => {
    const response = await f.post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })
    expect(response.status).toBe(401)
  })

  it('bridges tools, resources, prompts, notifications, progress and elicitation to the child', async () => {
    const client = await connect()
    try {
      await expectCarriedBothWays(client)
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
      expect(f.gw.events.at(-1)).toMatchObject({ tool: 'audit_report', decision: 'deny' })
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
