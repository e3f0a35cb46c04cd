// What all three servers are configured with, so their token responses are comparable.
import { createServer } from 'node:net'

/** The protected resource every token is minted for (RFC 8707 `resource`, the JWT's `aud`). */
export const RESOURCE = 'http://127.0.0.1:9999/mcp'
/** Where authorization-code flows redirect; nothing listens there, the flow reads `Location`. */
export const REDIRECT_URI = 'http://127.0.0.1:9999/callback'
export const SCOPE = 'mcp:read'
/** The bench person (authorization-code scenario). */
export const BENCH_USER = {
  email: 'bench@example.com',
  name: 'Bench User',
  password: 'bench-password-not-secret',
}

/** A free TCP port on 127.0.0.1 (bound briefly, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** `Authorization: Basic` for a client id and secret (RFC 6749 §2.3.1: form-encode both first). */
export function basicAuth(clientId, clientSecret) {
  const encode = (s) => encodeURIComponent(s).replace(/%20/g, '+')
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`
}

/** The client_credentials request body the load generator sends. */
export const TOKEN_BODY = new URLSearchParams({
  grant_type: 'client_credentials',
  resource: RESOURCE,
}).toString()

/**
 * Tells the parent this server is ready (fork IPC) and stops cleanly on SIGTERM or when the parent
 * goes away. `info` describes how to reach it; see run.mjs for the fields.
 */
export function announce(info, stop) {
  process.send?.({ type: 'ready', info })
  let stopping = false
  const shutdown = async () => {
    if (stopping) return
    stopping = true
    try {
      await stop()
    } finally {
      process.exit(0)
    }
  }
  process.on('SIGTERM', shutdown)
  process.on('disconnect', shutdown)
}

/** Reports a start-up failure to the parent as one line, then exits non-zero. */
export function failStart(err) {
  const message = err instanceof Error ? err.message : String(err)
  process.send?.({ type: 'error', message })
  process.stderr.write(`${message}\n`)
  process.exit(1)
}
