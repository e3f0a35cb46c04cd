import { BlockList, isIP } from 'node:net'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from './env.js'

/** The reverse proxies whose `X-Forwarded-For` Deputy believes (the `trustedProxies` setting). */
export interface TrustedProxies {
  /** True when `address` (a plain IPv4 or IPv6 address) is one of the trusted proxies. */
  has(address: string): boolean
  readonly empty: boolean
}

/** Compiles the `trustedProxies` setting (addresses and CIDR ranges, already validated). */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  const list = new BlockList()
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/')
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(prefix), type)
  }
  return {
    empty: entries.length === 0,
    has: (address) => list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4'),
  }
}

/**
 * `::ffff:192.0.2.1` (how a dual-stack socket shows an IPv4 peer) as `192.0.2.1`, and an
 * `X-Forwarded-For` entry with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`) as the bare
 * address; undefined when it is not an address at all.
 */
function plainAddress(value: string): string | undefined {
  let v = value.trim()
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(v)
  if (bracketed?.[1]) v = bracketed[1]
  else if (/^[\d.]+:\d+$/.test(v)) v = v.slice(0, v.lastIndexOf(':'))
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(v)
  if (mapped?.[1]) v = mapped[1]
  return isIP(v) === 0 ? undefined : v.toLowerCase()
}

/**
 * The client's network address. Headers are read only when the socket's peer is a trusted
 * proxy: each proxy appends the address it received the request from, so walking
 * `X-Forwarded-For` from the right, past the entries that are themselves trusted proxies, the
 * first other entry is the last address nobody we trust could have written — anything to its
 * left the client may have made up. With no trusted proxies, or from any other peer, the header
 * is ignored: one made-up header must not give each attempt a fresh address.
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | undefined,
  trusted: TrustedProxies,
): string | undefined {
  const peer = socketAddress === undefined ? undefined : plainAddress(socketAddress)
  if (peer === undefined || trusted.empty || !trusted.has(peer)) return peer
  let nearest = peer
  const hops = (forwardedFor ?? '').split(',')
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] as string).trim()
    if (hop === '') continue
    const address = plainAddress(hop)
    // Not an address: no proxy of ours wrote it, so the last trusted hop is all we know.
    if (address === undefined) return nearest
    if (!trusted.has(address)) return address
    nearest = address
  }
  return nearest
}

/**
 * Sets `clientAddress` for the handlers: the socket's peer (when the host is Node's HTTP server)
 * as `clientAddress` resolves it through the trusted proxies, or undefined when the host cannot
 * tell (in-process requests).
 */
export function clientAddressMiddleware(trusted: TrustedProxies): MiddlewareHandler<AppEnv> {
  return async function clientAddressOf(c, next) {
    let socket: string | undefined
    try {
      socket = getConnInfo(c).remote.address
    } catch {
      // Not running on Node's HTTP server: address unknown.
    }
    // Several X-Forwarded-For headers arrive joined by ", ", in order, which is what we want.
    const forwarded = trusted.empty ? undefined : c.req.header('x-forwarded-for')
    c.set('clientAddress', clientAddress(socket, forwarded, trusted))
    await next()
  }
}
