// (a) The MCP server with no auth: the official SDK v2, stateless (a fresh McpServer per request
// from createMcpHandler, 2026-07-28 requests answered without a session), served by the SDK's
// Hono adapter at /mcp. The same wiring @deputy/mcp uses, minus the gate.
import { serve } from '@hono/node-server'
import { createMcpHonoApp } from '@modelcontextprotocol/hono'
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server'
import { Hono } from 'hono'
import { z } from 'zod'
import { announce, failStart, freePort, TOOL } from '../lib/common.mjs'

try {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const inputSchema = z.object({ text: z.string() })
  const handler = createMcpHandler(
    () => {
      const server = new McpServer({ name: 'bench-echo', version: '1.0.0' })
      server.registerTool(
        TOOL,
        { description: 'Returns its text argument', inputSchema },
        async ({ text }) => ({ content: [{ type: 'text', text }] }),
      )
      return server
    },
    { onerror: (error) => process.stderr.write(`[direct] ${error.message}\n`) },
  )
  const mcp = createMcpHonoApp({ host: '127.0.0.1' })
  mcp.all('/', (c) => {
    const parsedBody = c.get('parsedBody')
    return handler.fetch(c.req.raw, parsedBody !== undefined ? { parsedBody } : undefined)
  })
  const app = new Hono()
  app.route('/mcp', mcp)

  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' })
  await new Promise((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  announce({ url: `${origin}/mcp`, resource: `${origin}/mcp`, auth: false }, async () => {
    await handler.close()
    await new Promise((resolve) => server.close(() => resolve()))
  })
} catch (err) {
  failStart(err)
}
