import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { UpstreamProvider } from './upstream-provider.js'

/**
 * A small third-party API on http://127.0.0.1:<random port> that trusts the upstream provider's
 * access tokens (helpers/upstream-provider.ts), the way a SaaS API trusts its own authorization
 * server: each request's Bearer token is introspected there (RFC 7662), so an expired, revoked or
 * made-up token is refused exactly when the provider says so.
 *
 *   const api = await startUpstreamApi({ provider: upstream })
 *   GET  api.url + '/me'     → 200 { sub, client_id, scope } of the token
 *   GET  api.url + '/repos'  → 200 [{ id, name, owner }] (two repositories of the token's subject)
 *   POST api.url + '/echo'   → 200 { sub, body } (the JSON body sent, to check forwarding)
 *   no, expired or invalid token → 401 with `WWW-Authenticate: Bearer error="invalid_token"`
 *   (no token at all → 401 `WWW-Authenticate: Bearer` without an error, as RFC 6750 §3.1 says)
 *   api.counts  → { calls, accepted, refused }   api.seen → tokens' subjects in order
 *   api.requiredScope = 'repo'  → a valid token without that scope: 403 error="insufficient_scope"
 *   await api.close()
 */
export interface UpstreamApiCounts {
  calls: number
  accepted: number
  refused: number
}

export type UpstreamApi = Awaited<ReturnType<typeof startUpstreamApi>>

export async function startUpstreamApi({
  provider,
}: {
  provider: Pick<UpstreamProvider, 'introspect'>
}) {
  const counts: UpstreamApiCounts = { calls: 0, accepted: 0, refused: 0 }
  const seen: string[] = []
  const state = { requiredScope: undefined as string | undefined }

  const server = createServer(async (req, res) => {
    counts.calls++
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(body))
    }
    try {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const authorization = req.headers.authorization ?? ''
      const match = /^Bearer ([^\s]+)$/i.exec(authorization)
      if (!match?.[1]) {
        counts.refused++
        send(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="upstream-api"' })
        return
      }
      const info = await provider.introspect(match[1])
      if (!info.active || info.token_type !== 'Bearer') {
        counts.refused++
        send(
          401,
          { error: 'invalid_token' },
          {
            'www-authenticate':
              'Bearer realm="upstream-api", error="invalid_token", error_description="the access token is expired or invalid"',
          },
        )
        return
      }
      const scopes = String(info.scope ?? '').split(' ')
      if (state.requiredScope && !scopes.includes(state.requiredScope)) {
        counts.refused++
        send(
          403,
          { error: 'insufficient_scope' },
          {
            'www-authenticate': `Bearer realm="upstream-api", error="insufficient_scope", scope="${state.requiredScope}"`,
          },
        )
        return
      }
      counts.accepted++
      const sub = String(info.sub)
      seen.push(sub)
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (req.method === 'GET' && path === '/me') {
        send(200, { sub, client_id: info.client_id, scope: info.scope })
      } else if (req.method === 'GET' && path === '/repos') {
        send(200, [
          { id: 1, name: 'hello-world', owner: sub },
          { id: 2, name: 'deputy-notes', owner: sub },
        ])
      } else if (req.method === 'POST' && path === '/echo') {
        const text = Buffer.concat(chunks).toString('utf8')
        send(200, { sub, body: text === '' ? null : JSON.parse(text) })
      } else {
        send(404, { error: 'not_found' })
      }
    } catch (error) {
      send(500, { error: 'server_error', error_description: String(error) })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url,
    counts,
    seen,
    get requiredScope() {
      return state.requiredScope
    },
    set requiredScope(scope: string | undefined) {
      state.requiredScope = scope
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    },
  }
}
