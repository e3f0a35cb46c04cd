import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import {
  assertRunnerInstalled,
  type ConformanceCheck,
  freePort,
  RUNNER_CLI,
  RUNNER_DIR,
  RUNNER_NODE,
  readChecks,
} from '../conformance/runner.js'
import { startGateway, startIssuer } from './helpers.js'

/** `@modelcontextprotocol/server-everything`, pinned beside the runner in runner/package.json. */
const EVERYTHING = join(
  RUNNER_DIR,
  'node_modules/@modelcontextprotocol/server-everything/dist/index.js',
)
/** server-everything is built on the v1 SDK: a 2025-11-25 server. */
const SPEC_VERSION = '2025-11-25'

/** Starts server-everything's Streamable HTTP transport on a free port of this machine. */
async function startEverything(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort()
  const child = spawn(RUNNER_NODE, [EVERYTHING, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  await new Promise<void>((resolve, reject) => {
    let said = ''
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => {
      said += chunk
      if (said.includes('listening on port')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`server-everything exited (${code}): ${said}`)))
  })
  return { url: `http://127.0.0.1:${port}/mcp`, child }
}

/**
 * The test-only forwarder: the runner sends no token, so this adds a valid one to every request
 * and streams everything else through unchanged, both ways.
 */
async function startForwarder(
  target: string,
  token: string,
): Promise<{ url: string; server: Server }> {
  const to = new URL(target)
  const server = createServer((req, res) => {
    const upstream = httpRequest(
      {
        host: to.hostname,
        port: to.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: to.host, authorization: `Bearer ${token}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { url: `http://127.0.0.1:${port}${to.pathname}`, server }
}

/** Runs the runner's `server` suite against `url`; resolves with every check, by scenario. */
function runServerSuite(url: string, outputDir: string): Promise<Map<string, ConformanceCheck[]>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      RUNNER_NODE,
      [RUNNER_CLI, 'server', '--url', url, '--spec-version', SPEC_VERSION, '-o', outputDir],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    )
    let output = ''
    child.stdout?.on('data', (chunk) => {
      output += chunk
    })
    child.stderr?.on('data', (chunk) => {
      output += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000)
    child.once('error', reject)
    child.once('close', () => {
      clearTimeout(timer)
      const checks = readChecks(outputDir)
      if (checks.size === 0) reject(new Error(`the runner wrote no results:\n${output}`))
      else resolve(checks)
    })
  })
}

/** `scenario: check-id STATUS`, sorted: what "the same results" compares. */
function outcomes(checks: Map<string, ConformanceCheck[]>): string[] {
  const lines: string[] = []
  for (const [scenario, list] of checks) {
    for (const check of list)
      lines.push(`${scenario.replace(/^server-/, '')}: ${check.id} ${check.status}`)
  }
  return lines.sort()
}

const children: ChildProcess[] = []
const servers: Server[] = []
const dirs: string[] = []
const closers: (() => Promise<void>)[] = []

beforeAll(() => assertRunnerInstalled())

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    server.close()
  }
  for (const close of closers) await close()
  for (const child of children) child.kill('SIGKILL')
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('official MCP conformance (server scenarios) through the gateway', () => {
  it('gives server-everything the same results directly and behind the gateway', {
    timeout: 360_000,
  }, async () => {
    const direct = await startEverything()
    const behind = await startEverything()
    children.push(direct.child, behind.child)

    const issuer = await startIssuer()
    closers.push(() => issuer.close())
    const gw = await startGateway({
      issuer: issuer.issuer,
      upstream: httpUpstream({ url: behind.url }),
    })
    closers.push(() => gw.close())

    // The gateway alone keeps refusing the runner, which sends no token.
    const bare = await fetch(gw.resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    })
    expect(bare.status).toBe(401)
    expect(bare.headers.get('www-authenticate')).toContain('resource_metadata=')

    const token = await issuer.token({ aud: gw.resource })
    const forwarder = await startForwarder(gw.resource, token)
    servers.push(forwarder.server)

    const directDir = mkdtempSync(join(tmpdir(), 'deputy-conformance-direct-'))
    const gatewayDir = mkdtempSync(join(tmpdir(), 'deputy-conformance-gateway-'))
    dirs.push(directDir, gatewayDir)
    const directChecks = outcomes(await runServerSuite(direct.url, directDir))
    const gatewayChecks = outcomes(await runServerSuite(forwarder.url, gatewayDir))

    // Sanity: the suite ran and server-everything passes a good share of it.
    expect(directChecks.filter((line) => line.endsWith(' SUCCESS')).length).toBeGreaterThan(20)
    expect(gatewayChecks).toEqual(directChecks)
    expect(gw.errors).toEqual([])
  })
})
