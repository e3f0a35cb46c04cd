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

/** How long a drain waits for in-flight requests before cutting their connections. */
export const SHUTDOWN_GRACE_MS = 10_000

/** A fetch handler served on a Node HTTP server, and how to stop it without hanging. */
export interface ServedFetch {
  url: string
  port: number
  /**
   * Stops accepting connections and lets in-flight requests finish, each answered with
   * `Connection: close`; keep-alive connections close as they fall idle, and whatever still runs
   * after `graceMs` is cut off. `beforeWait` runs once draining has begun (end open streams there).
   */
  drain(options?: { graceMs?: number; beforeWait?: () => void }): Promise<void>
}

/** The Node edge: serves a Web fetch handler on a port. Nothing else in Deputy imports node:http. */
export async function serveFetch(
  fetch: (request: Request) => Response | Promise<Response>,
  options: { port: number; host: string },
): Promise<ServedFetch> {
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch, port: options.port, hostname: options.host }, () => resolve(s))
    s.once('error', reject)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  let draining: Promise<void> | undefined
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
    drain(drainOptions = {}) {
      draining ??= (async () => {
        for (const res of inFlight) askToClose(res)
        const grace = setTimeout(
          () => http.closeAllConnections(),
          drainOptions.graceMs ?? SHUTDOWN_GRACE_MS,
        )
        grace.unref()
        await new Promise<void>((resolve) => {
          http.close(() => resolve())
          http.closeIdleConnections()
          drainOptions.beforeWait?.()
        })
        clearTimeout(grace)
      })()
      return draining
    },
  }
}

/** Serves a Deputy's app; shutting down drains the server, then closes Deputy. */
export async function listen(
  deputy: Deputy,
  options: { port: number; host: string },
): Promise<RunningServer> {
  const served = await serveFetch(deputy.app.fetch, options)
  let stopping: Promise<void> | undefined
  return {
    url: served.url,
    port: served.port,
    shutdown(shutdownOptions = {}) {
      stopping ??= served
        .drain({ ...shutdownOptions, beforeWait: () => deputy.endStreams() })
        .then(() => deputy.close())
      return stopping
    },
  }
}
