import { describe, expect, it } from 'vitest'
import { memoryStateStore, protectMcpServer } from '../src/index.js'

// Issue 11 §5: approvals are configured once, at start; what cannot work is refused there with
// one line, never discovered on a person's first call.

const base = {
  resource: 'http://127.0.0.1:9/mcp',
  authorizationServers: ['http://127.0.0.1:8'],
  verifier: async () => ({ ok: false as const, reason: 'missing' as const }),
  server: { name: 'test', version: '1.0.0' },
}
const approvals = { issuer: 'http://127.0.0.1:8', clientId: 'mcp', clientSecret: 's3cret' }

describe('approvals options', () => {
  it('needs a state store, where pending approvals are kept', () => {
    expect(() => protectMcpServer({ ...base, approvals })).toThrow(/approvals: needs `state`/)
  })

  it('takes exactly one of clientSecret and privateKey', async () => {
    const { privateKey } = await crypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign', 'verify'],
    )
    const state = memoryStateStore()
    expect(() =>
      protectMcpServer({
        ...base,
        state,
        // Types forbid both; a JavaScript caller is told at start.
        approvals: { ...approvals, privateKey: { key: privateKey } } as never,
      }),
    ).toThrow(/exactly one of clientSecret and privateKey/)
    const { clientSecret: _, ...withoutSecret } = approvals
    expect(() => protectMcpServer({ ...base, state, approvals: withoutSecret as never })).toThrow(
      /exactly one of clientSecret and privateKey/,
    )
    expect(() =>
      protectMcpServer({
        ...base,
        state,
        approvals: { ...withoutSecret, privateKey: { key: privateKey } },
      }),
    ).not.toThrow()
  })

  it('refuses an issuer that is plain http off loopback', () => {
    expect(() =>
      protectMcpServer({
        ...base,
        state: memoryStateStore(),
        approvals: { ...approvals, issuer: 'http://deputy.example' },
      }),
    ).toThrow(/approvals\.issuer/)
  })

  it('refuses an approval rule without the approvals option, and a binding message over 100 characters', () => {
    const kit = protectMcpServer(base)
    expect(() => kit.tool('buy', { approval: {} }, {}, () => ({ content: [] }))).toThrow(
      'tool buy: an approval rule needs the approvals option',
    )
    const withApprovals = protectMcpServer({ ...base, state: memoryStateStore(), approvals })
    expect(() =>
      withApprovals.tool('buy', { approval: { bindingMessage: 'x'.repeat(101) } }, {}, () => ({
        content: [],
      })),
    ).toThrow(/bindingMessage/)
    expect(() =>
      withApprovals.tool('buy', { approval: { bindingMessage: 'Buy it' } }, {}, () => ({
        content: [],
      })),
    ).not.toThrow()
  })
})
