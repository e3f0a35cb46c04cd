import { describe, expect, it } from 'vitest'
import { ConfigSchema } from '../../src/config/schema.js'
import { clientAddress, trustedProxies } from '../../src/http/client-address.js'

describe('the client address behind trusted proxies', () => {
  const none = trustedProxies([])
  const proxies = trustedProxies(['10.0.0.0/8', '192.0.2.1', 'fd00::/8'])

  it('is the socket address when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress('198.51.100.7', '203.0.113.1', none)).toBe('198.51.100.7')
    expect(clientAddress('198.51.100.7', undefined, none)).toBe('198.51.100.7')
  })

  it('ignores X-Forwarded-For from a socket that is not a trusted proxy', () => {
    expect(clientAddress('198.51.100.7', '203.0.113.1', proxies)).toBe('198.51.100.7')
  })

  it('is the right-most X-Forwarded-For entry that is not itself a trusted proxy', () => {
    // The client wrote the left-most entries itself; only what the proxies appended counts.
    expect(clientAddress('10.1.2.3', 'spoofed, 1.2.3.4, 203.0.113.9, 10.0.0.5', proxies)).toBe(
      '203.0.113.9',
    )
    expect(clientAddress('192.0.2.1', '203.0.113.9', proxies)).toBe('203.0.113.9')
  })

  it('reads several X-Forwarded-For headers as one list, in order', () => {
    expect(clientAddress('10.0.0.1', '203.0.113.1, 203.0.113.2,10.0.0.9', proxies)).toBe(
      '203.0.113.2',
    )
  })

  it('is the socket address when a trusted proxy sent no X-Forwarded-For', () => {
    expect(clientAddress('10.0.0.1', undefined, proxies)).toBe('10.0.0.1')
    expect(clientAddress('10.0.0.1', ' ', proxies)).toBe('10.0.0.1')
  })

  it('stops at the first entry that is not an address, answering the last hop it trusted', () => {
    expect(clientAddress('10.0.0.1', '203.0.113.1, not-an-ip', proxies)).toBe('10.0.0.1')
    expect(clientAddress('10.0.0.1', '203.0.113.1, unknown, 10.0.0.7', proxies)).toBe('10.0.0.7')
  })

  it('is the left-most entry when every hop is a trusted proxy', () => {
    expect(clientAddress('10.0.0.1', '10.0.0.3, 10.0.0.2', proxies)).toBe('10.0.0.3')
  })

  it('understands IPv6, IPv4-mapped IPv6 and entries with ports', () => {
    expect(clientAddress('::ffff:10.0.0.1', '2001:db8::1', proxies)).toBe('2001:db8::1')
    expect(clientAddress('fd12::1', '[2001:db8::2]:4711, fd00::3', proxies)).toBe('2001:db8::2')
    expect(clientAddress('10.0.0.1', '203.0.113.4:51000', proxies)).toBe('203.0.113.4')
    expect(clientAddress('::ffff:198.51.100.7', undefined, none)).toBe('198.51.100.7')
  })

  it('is undefined when the host cannot tell the socket address', () => {
    expect(clientAddress(undefined, '203.0.113.1', proxies)).toBeUndefined()
  })

  it('takes trustedProxies as a list or comma-separated, and refuses what is not an address or range', () => {
    expect(ConfigSchema.parse({ trustedProxies: '10.0.0.0/8, 127.0.0.1' }).trustedProxies).toEqual([
      '10.0.0.0/8',
      '127.0.0.1',
    ])
    expect(ConfigSchema.parse({ trustedProxies: ['::1', 'fd00::/8'] }).trustedProxies).toEqual([
      '::1',
      'fd00::/8',
    ])
    for (const bad of ['proxy.internal', '10.0.0.0/33', '::1/129', '10.0.0.0/', '300.1.1.1']) {
      expect(ConfigSchema.safeParse({ trustedProxies: [bad] }).success).toBe(false)
    }
  })
})
