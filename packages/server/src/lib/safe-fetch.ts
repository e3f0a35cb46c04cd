import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP, type LookupFunction } from 'node:net'

/**
 * Fetching a URL that someone else chose (a Client ID Metadata Document, later a `jwks_uri`) is a
 * server-side request forgery risk: the URL may point at the cloud metadata service, a database on
 * the private network, or Deputy itself. These are the addresses that are never fetched, checked
 * after DNS resolution so a name that resolves to them is refused as well (RFC 6890 special-purpose
 * registries; draft-ietf-oauth-client-id-metadata-document §6 "Server-Side Request Forgery").
 */
// Two lists: a single BlockList compares IPv4 addresses against IPv6 rules through their mapped
// form, so `::ffff:0:0/96` would otherwise match every IPv4 address.
const NOT_PUBLIC_V4 = new BlockList()
const NOT_PUBLIC_V6 = new BlockList()
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network", incl. 0.0.0.0 which reaches the local host
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, incl. the cloud metadata service 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, incl. broadcast
] as const) {
  NOT_PUBLIC_V4.addSubnet(network, prefix, 'ipv4')
}
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::', 96], // IPv4-compatible (deprecated)
  ['::ffff:0:0', 96], // IPv4-mapped: would reach whatever IPv4 address it embeds
  ['64:ff9b::', 96], // NAT64: also embeds an IPv4 address
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments, incl. Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  NOT_PUBLIC_V6.addSubnet(network, prefix, 'ipv6')
}

const LOOPBACK_V6 = new BlockList()
LOOPBACK_V6.addAddress('::1', 'ipv6')

/** True for an address on the public internet: not private, loopback, link-local or reserved. */
export function isPublicAddress(address: string): boolean {
  const version = isIP(address)
  if (version === 4) return !NOT_PUBLIC_V4.check(address, 'ipv4')
  if (version === 6) return !NOT_PUBLIC_V6.check(address, 'ipv6')
  return false
}

/** True for a loopback address (127.0.0.0/8, ::1). Mapped forms are not loopback here. */
export function isLoopbackAddress(address: string): boolean {
  const version = isIP(address)
  if (version === 4) return address.startsWith('127.')
  return version === 6 && LOOPBACK_V6.check(address, 'ipv6')
}

/** Why a fetch was refused or failed; `reason` is precise and meant for the audit chain. */
export class SafeFetchError extends Error {
  readonly reason: string
  constructor(reason: string) {
    super(reason)
    this.name = 'SafeFetchError'
    this.reason = reason
  }
}

export interface SafeFetchOptions {
  /** When non-empty, only these host names are fetched (exact, case-insensitive). */
  allowedHosts?: readonly string[]
  /**
   * Development only: also allow loopback addresses, and plain http to them. Private and
   * link-local addresses stay refused.
   */
  allowHttpLoopback?: boolean
  /** Largest body accepted (default 64 KiB). */
  maxBytes?: number
  /** Deadline for the whole exchange, connection to last byte (default 5 s). */
  timeoutMs?: number
  /** The Accept header (default application/json). */
  accept?: string
  /** POST `body` instead of GET (a CIBA ping, a webhook), with these extra headers. */
  post?: { body: string; headers: Record<string, string> }
  /**
   * Any other request (an upstream provider's token endpoint, GitHub's grant DELETE): the
   * method, extra headers (Authorization, Content-Type) and an optional body. `post` wins.
   */
  request?: { method: string; headers?: Record<string, string>; body?: string }
}

export interface SafeFetchResponse {
  status: number
  headers: IncomingMessage['headers']
  body: string
}

export const SAFE_FETCH_DEFAULTS = { maxBytes: 64 * 1024, timeoutMs: 5_000 } as const

/**
 * GETs (or POSTs to) a URL chosen by someone else, guarded against server-side request forgery: https only
 * (http only to loopback with `allowHttpLoopback`), only public addresses after DNS resolution,
 * redirects never followed (a 3xx is refused, so no hop can lead inside), a size cap and an
 * overall deadline. Node's own http stack is used because `fetch` cannot check the address it
 * connects to.
 */
export function safeFetch(
  target: string,
  options: SafeFetchOptions = {},
): Promise<SafeFetchResponse> {
  const maxBytes = options.maxBytes ?? SAFE_FETCH_DEFAULTS.maxBytes
  const timeoutMs = options.timeoutMs ?? SAFE_FETCH_DEFAULTS.timeoutMs
  const allowLoopback = options.allowHttpLoopback === true

  let url: URL
  try {
    url = new URL(target)
  } catch {
    return Promise.reject(new SafeFetchError('not an absolute URL'))
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowLoopback))
    return Promise.reject(new SafeFetchError(`scheme ${url.protocol} is not allowed (https only)`))
  if (url.username || url.password)
    return Promise.reject(new SafeFetchError('URL must not contain user information'))
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const allowed = (options.allowedHosts ?? []).map((h) => h.toLowerCase())
  if (allowed.length > 0 && !allowed.includes(hostname.toLowerCase()))
    return Promise.reject(new SafeFetchError(`host ${hostname} is not in the allowed hosts`))

  const addressProblem = (address: string): string | null => {
    if (allowLoopback && isLoopbackAddress(address)) return null
    if (!isPublicAddress(address)) return `address ${address} is not a public address`
    if (url.protocol === 'http:') return `plain http to ${address} (only loopback may use http)`
    return null
  }

  // An IP literal never reaches `lookup`, so it is checked here (the URL parser has already turned
  // forms like 0x7f000001 or 2130706433 into dotted decimal).
  if (isIP(hostname) !== 0) {
    const problem = addressProblem(hostname)
    if (problem) return Promise.reject(new SafeFetchError(problem))
  }

  // Every address a name resolves to must be acceptable, so a name cannot mix a public address
  // with a private one and win a race between them.
  const lookup: LookupFunction = (name, lookupOptions, callback) => {
    dnsLookup(name, { all: true, family: lookupOptions.family }, (err, addresses) => {
      if (err) return callback(err, '', 4)
      const list = addresses as LookupAddress[]
      const refused = list.map((a) => addressProblem(a.address)).find((p) => p !== null)
      if (refused || list.length === 0) {
        const error = new SafeFetchError(refused ?? `${name} has no address`)
        return callback(error as NodeJS.ErrnoException, '', 4)
      }
      if (lookupOptions.all) return callback(null, list as unknown as string)
      const first = list[0] as LookupAddress
      return callback(null, first.address, first.family)
    })
  }

  return new Promise((resolve, reject) => {
    let settled = false
    const finish = (err: SafeFetchError | null, value?: SafeFetchResponse) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err) {
        req.destroy()
        reject(err)
      } else resolve(value as SafeFetchResponse)
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const extra = options.post ?? options.request
    const body = extra?.body
    const req = send(url, {
      method: options.post ? 'POST' : (options.request?.method ?? 'GET'),
      lookup,
      // A fresh connection each time: a pooled socket would skip the address check.
      agent: false,
      headers: {
        accept: options.accept ?? 'application/json',
        'user-agent': 'deputy',
        ...extra?.headers,
        ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }),
      },
    })
    const timer = setTimeout(
      () => finish(new SafeFetchError(`no complete answer within ${timeoutMs} ms`)),
      timeoutMs,
    )
    req.on('error', (err) =>
      finish(
        err instanceof SafeFetchError ? err : new SafeFetchError(`fetch failed: ${err.message}`),
      ),
    )
    req.on('response', (res) => {
      const status = res.statusCode ?? 0
      if (status >= 300 && status < 400) {
        res.resume()
        return finish(new SafeFetchError(`answered ${status} (redirects are not followed)`))
      }
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.resume()
        return finish(new SafeFetchError(`document is larger than ${maxBytes} bytes`))
      }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBytes) {
          res.destroy()
          return finish(new SafeFetchError(`document is larger than ${maxBytes} bytes`))
        }
        chunks.push(chunk)
      })
      res.on('error', (err) => finish(new SafeFetchError(`fetch failed: ${err.message}`)))
      res.on('end', () =>
        finish(null, {
          status,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      )
    })
    req.end(body)
  })
}
