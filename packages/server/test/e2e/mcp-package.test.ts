import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { listen, type RunningServer } from '../../src/server.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { freePort } from '../interop/fixture.js'

// Issue 10 §6: @deputy/mcp is a package others install. It is packed with `npm pack`, installed
// from the tarball into an empty folder with the README's install line, and the README's example
// runs there, verbatim, against a real Deputy.

const ROOT = resolve(import.meta.dirname, '../../../..')
const MCP = join(ROOT, 'packages/mcp')
const ADMIN: Actor = { type: 'system', id: 'test' }
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** The first fenced block of `language` after `heading` in a Markdown text. */
function codeBlock(markdown: string, heading: string, language: string): string {
  const section = markdown.slice(markdown.indexOf(heading))
  const match = new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``).exec(section)
  if (!match?.[1]) throw new Error(`no ${language} block after ${heading}`)
  return match[1]
}

describe('@deputy/mcp as others install it', () => {
  let dir: string
  let deputy: TestDeputy
  let server: RunningServer
  let example: ChildProcess | undefined
  let exampleOut = ''
  let shopUrl: string
  let token: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-mcp-package-'))
    const readme = readFileSync(join(MCP, 'README.md'), 'utf8')

    // npm pack, then the README's install line with the tarball in place of the registry's copy.
    const [packed] = JSON.parse(
      execFileSync(NPM, ['pack', '--json', '--pack-destination', dir], {
        cwd: MCP,
        encoding: 'utf8',
      }),
    ) as { filename: string }[]
    const app = join(dir, 'app')
    mkdirSync(app)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
    const install = codeBlock(readme, '## Install', 'sh').trim().split(/\s+/)
    expect(install.slice(0, 3)).toEqual(['npm', 'install', '@deputy/mcp'])
    execFileSync(
      NPM,
      [
        'install',
        join(dir, packed?.filename as string),
        ...install.slice(3),
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
      ],
      { cwd: app, stdio: 'pipe' },
    )
    writeFileSync(join(app, 'server.mjs'), codeBlock(readme, '## Protect a server', 'js'))

    // A real Deputy: the README's resource, and an agent that may buy shirts there.
    const port = await freePort()
    const shopPort = await freePort()
    shopUrl = `http://localhost:${shopPort}/mcp`
    deputy = await startTestDeputy({ config: { issuer: `http://localhost:${port}` } })
    server = await listen(deputy, { port, host: '127.0.0.1' })
    await deputy.deps.resources.put(
      { uri: shopUrl, scopes: { 'shop.buy': 'Buy shirts for you' }, claimsTemplate: ['name'] },
      ADMIN,
    )
    const agent = await deputy.deps.clients.register(
      { name: 'Shirt agent', allowedScopes: ['shop.buy'], allowedResources: [shopUrl] },
      ADMIN,
    )
    const issued = await fetch(`http://127.0.0.1:${port}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${btoa(`${agent.client.clientId}:${agent.clientSecret}`)}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: shopUrl }),
    })
    expect(issued.status).toBe(200)
    token = ((await issued.json()) as { access_token: string }).access_token

    example = spawn(process.execPath, ['server.mjs'], {
      cwd: app,
      env: { PATH: process.env.PATH, ISSUER: `http://localhost:${port}`, PORT: String(shopPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await new Promise<void>((ready, fail) => {
      example?.stdout?.on('data', (chunk: Buffer) => {
        exampleOut += chunk.toString('utf8')
        if (exampleOut.includes('MCP server at')) ready()
      })
      example?.stderr?.on('data', (chunk: Buffer) => {
        exampleOut += chunk.toString('utf8')
      })
      example?.once('exit', (code) => fail(new Error(`server.mjs exited ${code}: ${exampleOut}`)))
    })
  }, 240_000)

  afterAll(async () => {
    example?.kill()
    await server?.shutdown()
    await deputy?.database.dispose()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('installs from the tarball with its own dependencies and serves the README example', async () => {
    const installed = JSON.parse(
      readFileSync(join(dir, 'app/node_modules/@deputy/mcp/package.json'), 'utf8'),
    ) as { license?: string; exports?: unknown }
    expect(installed.license).toBe('Apache-2.0')
    expect(installed.exports).toBeDefined()

    // Without a token: the challenge that sends a client to Deputy.
    const anonymous = await fetch(shopUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/resource_metadata=/)

    // With Deputy's token, through the official MCP client.
    const client = new Client({ name: 'package-test', version: '1.0.0' })
    await client.connect(
      new StreamableHTTPClientTransport(new URL(shopUrl), {
        authProvider: { token: async () => token },
      }),
    )
    const result = await client.callTool({ name: 'buy_shirt', arguments: { size: 'M' } })
    expect(result.content).toEqual([
      { type: 'text', text: expect.stringMatching(/^Ordered a M shirt for client_/) },
    ])
    await client.close()
    expect(exampleOut).toMatch(/tool\.called \S+ client_\S+ buy_shirt allow/)
  })
})
