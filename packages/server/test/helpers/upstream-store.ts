import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Adapter, AdapterPayload } from 'oidc-provider'

/**
 * The upstream provider fixture's plumbing (helpers/upstream-provider.ts): its storage, kept in
 * memory where the fixture can look into it (revoke an account's grants, expire access tokens,
 * list the token values issued), and a listener started before the provider so its issuer can
 * carry the port.
 */

/** An in-memory adapter the fixture can look into (revoke an account's grants, expire tokens). */
export class Store {
  readonly entries = new Map<string, { kind: string; payload: AdapterPayload }>()
  /** Deletes every grant of the account and all that hangs off them; returns how many grants. */
  revokeAccount(accountId: string): number {
    const grantIds = new Set<string>()
    for (const entry of this.entries.values()) {
      if (entry.kind === 'Grant' && entry.payload.accountId === accountId)
        grantIds.add(String(entry.payload.jti))
    }
    for (const [key, entry] of this.entries) {
      const grantId = entry.kind === 'Grant' ? entry.payload.jti : entry.payload.grantId
      if (grantIds.has(String(grantId))) this.entries.delete(key)
    }
    return grantIds.size
  }

  expireAccessTokens(): number {
    let n = 0
    const past = Math.floor(Date.now() / 1000) - 1
    for (const entry of this.entries.values()) {
      if (entry.kind === 'AccessToken') {
        entry.payload.exp = past
        n++
      }
    }
    return n
  }

  /** Opaque access and refresh tokens are their own ids here. */
  tokenValues(accountId?: string): string[] {
    return [...this.entries.values()]
      .filter((e) => e.kind === 'AccessToken' || e.kind === 'RefreshToken')
      .filter((e) => accountId === undefined || e.payload.accountId === accountId)
      .map((e) => String(e.payload.jti))
  }

  live(accountId: string): { grants: number; accessTokens: number; refreshTokens: number } {
    const now = Math.floor(Date.now() / 1000)
    const mine = [...this.entries.values()].filter((e) => e.payload.accountId === accountId)
    const alive = (e: { payload: AdapterPayload }) =>
      (e.payload.exp ?? Number.POSITIVE_INFINITY) > now
    return {
      grants: mine.filter((e) => e.kind === 'Grant').length,
      accessTokens: mine.filter((e) => e.kind === 'AccessToken' && alive(e)).length,
      refreshTokens: mine.filter(
        (e) => e.kind === 'RefreshToken' && alive(e) && !e.payload.consumed,
      ).length,
    }
  }

  adapter(kind: string): Adapter {
    const entries = this.entries
    const key = (id: string) => `${kind}:${id}`
    return {
      async upsert(id, payload) {
        entries.set(key(id), { kind, payload: structuredClone(payload) })
      },
      async find(id) {
        const entry = entries.get(key(id))
        return entry ? structuredClone(entry.payload) : undefined
      },
      async findByUserCode() {
        return undefined
      },
      async findByUid(uid) {
        for (const entry of entries.values()) {
          if (entry.kind === kind && entry.payload.uid === uid)
            return structuredClone(entry.payload)
        }
        return undefined
      },
      async consume(id) {
        const entry = entries.get(key(id))
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000)
      },
      async destroy(id) {
        entries.delete(key(id))
      },
      async revokeByGrantId(grantId) {
        for (const [k, entry] of entries) {
          if (entry.kind === kind && entry.payload.grantId === grantId) entries.delete(k)
        }
      },
    }
  }
}

export function listen(
  handler: (req: never, res: never) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => handler(req as never, res as never))
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, port: (server.address() as AddressInfo).port })
    })
  })
}

export function isLoopback(uri: string): boolean {
  try {
    const url = new URL(uri)
    return (
      url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
    )
  } catch {
    return false
  }
}
