import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { formClient } from './sign-in.js'

/**
 * Sends one HTTP request over a real socket whose local end is bound to `from` (any 127.x.y.z on
 * Linux is a loopback address), so the server sees a different client address per "machine".
 */
export function requestFrom(
  from: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method ?? 'GET',
        headers: init.headers,
        localAddress: from,
        // One connection per request: a pooled socket would keep the first request's address.
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          const headers = new Headers()
          for (const [name, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) for (const v of value) headers.append(name, v)
            else if (value !== undefined) headers.set(name, value)
          }
          resolve(
            new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), {
              status: res.statusCode ?? 0,
              headers,
            }),
          )
        })
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

/** A browser on one loopback address: keeps its cookies and signs in through the real form. */
export function browserAt(origin: string, from: string, headers: Record<string, string> = {}) {
  return formClient((path, init) => {
    const all: Record<string, string> = {}
    new Headers(init.headers).forEach((value, name) => {
      all[name] = value
    })
    return requestFrom(from, `${origin}${path}`, {
      method: init.method,
      headers: all,
      body: init.body as string | undefined,
    })
  }, headers)
}

/** A loopback server standing in for the hosts of Client ID Metadata Documents; counts hits. */
export async function documentServer(answer: (path: string) => { status: number; body: string }) {
  const hits = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    const { status, body } = answer(path)
    res.writeHead(status, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
