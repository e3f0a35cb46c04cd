// (b) The same tool through @deputy/mcp: protectMcpServer with a jwtVerifier against the runner's
// JWKS (ES256, typ at+jwt, aud = this resource), and a tool rule requiring one scope. No audit hook
// and no state store: the kit's own cost, the gate and the rule, is what is measured.

import { jwtVerifier, protectMcpServer } from '@deputy/mcp'
import { serve } from '@hono/node-server'
import { z } from 'zod'
import { announce, failStart, freePort, SCOPE, TOOL } from '../lib/common.mjs'

try {
  const { BENCH_ISSUER: issuer, BENCH_JWKS_URI: jwksUri } = process.env
  if (!issuer || !jwksUri) throw new Error('BENCH_ISSUER and BENCH_JWKS_URI are required')
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const resource = `${origin}/mcp`
  const kit = protectMcpServer({
    resource,
    authorizationServers: [issuer],
    verifier: jwtVerifier({ issuer, jwksUri, audience: resource }),
    server: { name: 'bench-echo', version: '1.0.0' },
    onError: (error) => process.stderr.write(`[kit] ${error.message}\n`),
  })
  kit.tool(
    TOOL,
    { scopes: [SCOPE] },
    { description: 'Returns its text argument', inputSchema: z.object({ text: z.string() }) },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  )

  const server = serve({ fetch: kit.fetch, port, hostname: '127.0.0.1' })
  await new Promise((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  announce({ url: resource, resource, auth: true }, async () => {
    await kit.close()
    await new Promise((resolve) => server.close(() => resolve()))
  })
} catch (err) {
  failStart(err)
}
