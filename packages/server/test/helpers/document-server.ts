import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A document server on 127.0.0.1: each path answers what the test put there, and counts hits. */
export interface DocumentServer {
  origin: string
  hits: Map<string, number>
  routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>
  close(): Promise<void>
}

/** Starts a {@link DocumentServer} (Client ID Metadata Documents, JWKS, anything fetched by URL). */
export async function startDocumentServer(): Promise<DocumentServer> {
  const hits = new Map<string, number>()
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>()
  const open = new Set<ServerResponse>()
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    open.add(res)
    res.on('close', () => open.delete(res))
    const route = routes.get(path)
    if (route) route(req, res)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    routes,
    close: () =>
      new Promise((resolve) => {
        for (const res of open) res.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A route answering 200 with a JSON body (a string is sent as it is). */
export function json(body: unknown, headers: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', ...headers })
    res.end(typeof body === 'string' ? body : JSON.stringify(body))
  }
}
