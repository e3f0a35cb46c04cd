// (d) The direct server (a) behind a bare node:http reverse proxy: the floor of one HTTP hop, the
// reference for what the gateway costs over it. It does the hop's work and nothing else: reads
// the request body whole, drops the client's token and the hop-by-hop fields, forwards over a
// kept-alive connection, reads the answer whole and sends it on. No token check, no JSON-RPC
// parsing, no rules, no audit.
import { Agent, createServer, request } from 'node:http'
import { announce, failStart, freePort } from '../lib/common.mjs'

// RFC 9110 §7.6.1 hop-by-hop fields, plus the two credentials that must not reach the upstream.
const DROPPED = new Set([
  'authorization',
  'dpop',
  'connection',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Every chunk of a message, in one buffer. */
function readWhole(message, done) {
  const chunks = []
  message.on('data', (chunk) => chunks.push(chunk))
  message.on('end', () => done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)))
}

/** A copy of node's parsed headers without the dropped fields, with the body's length. */
function forwarded(headers, length) {
  const out = {}
  for (const name of Object.keys(headers)) if (!DROPPED.has(name)) out[name] = headers[name]
  out['content-length'] = length
  return out
}

try {
  const { BENCH_UPSTREAM: upstream } = process.env
  if (!upstream) throw new Error('BENCH_UPSTREAM is required')
  const target = new URL(upstream)
  const agent = new Agent({ keepAlive: true })
  const port = await freePort()
  const server = createServer((req, res) => {
    readWhole(req, (body) => {
      const out = request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: req.method,
          headers: forwarded(req.headers, body.length),
          agent,
        },
        (answer) =>
          readWhole(answer, (bytes) => {
            res.writeHead(answer.statusCode ?? 502, forwarded(answer.headers, bytes.length))
            res.end(bytes)
          }),
      )
      out.on('error', () => {
        res.writeHead(502)
        res.end()
      })
      out.end(body)
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  const url = `http://127.0.0.1:${port}${target.pathname}`
  announce({ url, resource: url, auth: false }, () => new Promise((r) => server.close(r)))
} catch (err) {
  failStart(err)
}
