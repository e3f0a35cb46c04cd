import { type ServerType, serve } from '@hono/node-server'
import type { Deputy } from './deputy.js'

/** A Deputy listening on a Node HTTP server. */
export interface RunningServer {
  url: string
  port: number
  /** Stops accepting connections, lets in-flight requests finish, then closes the database. */
  shutdown(): Promise<void>
}

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
  return {
    url: `http://${host}:${port}`,
    port,
    shutdown() {
      stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          // Idle keep-alive sockets would hold close() open; in-flight requests still finish.
          ;(server as { closeIdleConnections?: () => void }).closeIdleConnections?.()
        })
        await deputy.close()
      })()
      return stopping
    },
  }
}
