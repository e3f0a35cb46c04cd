import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { type ServerType, serve } from '@hono/node-server'
import type { Deputy } from './deputy.js'

/** A Deputy listening on a Node HTTP server. */
export interface RunningServer {
  url: string
  port: number
  /**
   * Stops accepting connections, lets in-flight requests finish (each answered with
   * `Connection: close`), closes keep-alive connections as they fall idle, then closes the
   * database. Requests still running after `graceMs` (default 10 s) are cut off.
   */
  shutdown(options?: { graceMs?: number }): Promise<void>
}

/** How long shutdown waits for in-flight requests before cutting their connections. */
export const SHUTDOWN_GRACE_MS = 10_000

/** The Node edge: binds the Hono app to a port. Nothing else in Deputy imports node:http. */
export async function listen(
  deputy: Deputy,
  options: { port: number; host: string },
): Promise<RunningServer> {
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: deputy.app.fetch, port: options.port, hostname: options.host }, () =>
      resolve(s),
    )
    s.once('error', reject)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  let stopping: Promise<void> | undefined
  let draining = false
  const http = server as Server
  /** Responses not yet sent, so draining can tell them to close their connection too. */
  const inFlight = new Set<ServerResponse>()
  const askToClose = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('Connection', 'close')
  }
  // While draining, every answer tells the client to close its connection, and a connection that
  // has just been answered is closed as soon as it is idle: a keep-alive client can neither send
  // another request on it nor hold the process open until its keep-alive timeout.
  http.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) askToClose(res)
    inFlight.add(res)
    res.once('close', () => {
      inFlight.delete(res)
      if (draining) http.closeIdleConnections()
    })
  })
  return {
    url: `http://${host}:${port}`,
    port,
    shutdown(options = {}) {
      stopping ??= (async () => {
        draining = true
        for (const res of inFlight) askToClose(res)
        const grace = setTimeout(
          () => http.closeAllConnections(),
          options.graceMs ?? SHUTDOWN_GRACE_MS,
        )
        grace.unref()
        await new Promise<void>((resolve) => {
          http.close(() => resolve())
          http.closeIdleConnections()
        })
        clearTimeout(grace)
        await deputy.close()
      })()
      return stopping
    },
  }
}
