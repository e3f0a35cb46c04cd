import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '../../../..')
const BIN = join(ROOT, 'packages/server/bin/deputy.js')

/**
 * Issue 4 §2: the README's start command (`npm start` runs `deputy demo`) serves Deputy and
 * mcp.shop on one origin and prints where to point an MCP client and how to sign in.
 */
describe('deputy demo serves mcp.shop (issue 4 §2)', () => {
  let dir: string
  let child: ChildProcess | undefined

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-shop-demo-'))
    // The CLI runs compiled code: the server, the kit and the example (tsc emits despite errors
    // elsewhere, which the build and typecheck steps report on their own).
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    try {
      execFileSync(process.execPath, [tsc, '-b', 'examples/mcp-shop', 'examples/trading'], {
        cwd: ROOT,
        stdio: 'pipe',
      })
    } catch (err) {
      if (!String((err as { stdout?: Buffer }).stdout ?? '').includes('error TS')) throw err
    }
  }, 180_000)

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((done) => child?.once('exit', done))
      child.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('is what `npm start` runs, prints the MCP URL and the demo sign-in, and serves the shop beside Deputy', async () => {
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts
    expect(scripts.start).toMatch(/deputy\.js demo$/)

    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('DEPUTY_') && k !== 'PORT'),
    )
    child = spawn(process.execPath, [BIN, 'demo', '--port', '0'], {
      cwd: dir,
      env: { ...clean, DEPUTY_DATA_DIR: join(dir, 'data'), DEPUTY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let banner = ''
    await new Promise<void>((ready, fail) => {
      child?.stderr?.on('data', (chunk: Buffer) => {
        banner += chunk.toString('utf8')
        if (/set-password demo@mcp\.shop --password-stdin\n/.test(banner)) ready()
      })
      child?.once('exit', (code) => fail(new Error(`deputy demo exited with ${code}: ${banner}`)))
    })
    const issuer = /Deputy is running at (http:\/\/localhost:\d+)/.exec(banner)?.[1] ?? ''
    expect(banner).toContain(`MCP server URL: ${issuer}/mcp`)
    expect(banner).not.toContain('not installed or not built')
    expect(banner).toMatch(/email: +demo@mcp\.shop\n +password: +\S{20,}/)

    // An MCP client's first request: 401 pointing at the shop's metadata, which names Deputy.
    const first = await fetch(`${issuer}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(first.status).toBe(401)
    const metadataUrl = `${issuer}/.well-known/oauth-protected-resource/mcp`
    expect(first.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl}"`)
    for (const url of [metadataUrl, `${issuer}/.well-known/oauth-protected-resource`]) {
      expect(await (await fetch(url)).json()).toMatchObject({
        resource: `${issuer}/mcp`,
        authorization_servers: [issuer],
        scopes_supported: ['shop:read', 'shop:order', 'shop:admin'],
      })
    }
    const as = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()
    expect(as).toMatchObject({ issuer, jwks_uri: `${issuer}/jwks` })
  })
})

/**
 * Issue 11 §7: `deputy demo trading` serves the trading agent beside mcp.shop, on the same
 * origin, and says where it is and what waits for approval; any other demo name is one line.
 */
describe('deputy demo trading serves the trading agent beside mcp.shop (issue 11 §7)', () => {
  let dir: string
  let child: ChildProcess | undefined
  const clean = () =>
    Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('DEPUTY_') && k !== 'PORT'),
    )

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-trading-demo-'))
  })

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((done) => child?.once('exit', done))
      child.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it("prints both MCP URLs and the demo person's limit, and serves both servers", async () => {
    child = spawn(process.execPath, [BIN, 'demo', 'trading', '--port', '0'], {
      cwd: dir,
      env: { ...clean(), DEPUTY_DATA_DIR: join(dir, 'data'), DEPUTY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let banner = ''
    await new Promise<void>((ready, fail) => {
      child?.stderr?.on('data', (chunk: Buffer) => {
        banner += chunk.toString('utf8')
        if (
          /seeded: +resource created, demo@mcp\.shop's limit \$1,000\.00 \(set now\)\n/.test(banner)
        )
          ready()
      })
      child?.once('exit', (code) => fail(new Error(`deputy demo exited with ${code}: ${banner}`)))
    })
    const issuer = /Deputy is running at (http:\/\/localhost:\d+)/.exec(banner)?.[1] ?? ''
    expect(banner).toContain(`MCP server URL: ${issuer}/mcp`)
    expect(banner).toContain(`MCP server URL: ${issuer}/trading/mcp`)
    expect(banner).toContain('trading.over-limit and trading.restricted-stock')
    expect(banner).not.toContain('not installed or not built')

    const first = await fetch(`${issuer}/trading/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(first.status).toBe(401)
    const metadataUrl = `${issuer}/.well-known/oauth-protected-resource/trading/mcp`
    expect(first.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl}"`)
    expect(await (await fetch(metadataUrl)).json()).toMatchObject({
      resource: `${issuer}/trading/mcp`,
      authorization_servers: [issuer],
      scopes_supported: ['trading:read', 'trading:trade'],
    })
    // The root metadata and /mcp stay the shop's.
    const root = await (await fetch(`${issuer}/.well-known/oauth-protected-resource`)).json()
    expect(root.resource).toBe(`${issuer}/mcp`)
  })

  it('refuses a demo it does not know, in one line', () => {
    let stderr = ''
    let status: number | null = 0
    try {
      execFileSync(process.execPath, [BIN, 'demo', 'casino', '--port', '0'], {
        cwd: dir,
        env: { ...clean(), DEPUTY_DATA_DIR: join(dir, 'other') },
        stdio: 'pipe',
      })
    } catch (err) {
      stderr = String((err as { stderr?: Buffer }).stderr ?? '')
      status = (err as { status: number | null }).status
    }
    expect(status).not.toBe(0)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toContain("'casino'")
    expect(stderr).toContain('trading')
  })
})
