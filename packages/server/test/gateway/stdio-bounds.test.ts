import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { childEnvironment, stdioUpstream } from '../../src/gateway/upstream-stdio.js'
import { deputyCli, lines } from '../cli/run.js'
import { INITIALIZE, startGateway, startIssuer } from './helpers.js'

// One child process per MCP session is a resource anyone with a token can ask for: the gateway
// caps children per person and in total, stops idle ones, and gives them none of its secrets.

const UPSTREAM = fileURLToPath(new URL('./fixtures/upstream.mjs', import.meta.url))
const BIN = fileURLToPath(new URL('../../bin/deputy.js', import.meta.url))

let issuer: Awaited<ReturnType<typeof startIssuer>>
let dir: string
const closers: (() => Promise<void>)[] = []

beforeAll(async () => {
  issuer = await startIssuer()
  dir = mkdtempSync(join(tmpdir(), 'deputy-stdio-bounds-'))
})

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

afterAll(async () => {
  await issuer?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A record file the fixture writes `started <pid>` into, one line per child. */
function recordFile(name: string): { path: string; started(): number } {
  const path = join(dir, name)
  writeFileSync(path, '')
  return {
    path,
    started: () =>
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('started ')).length,
  }
}

async function gateway(options: Omit<Parameters<typeof stdioUpstream>[0], 'command' | 'args'>) {
  const gw = await startGateway({
    issuer: issuer.issuer,
    upstream: stdioUpstream({ command: process.execPath, args: [UPSTREAM], ...options }),
  })
  closers.push(() => gw.close())
  return gw
}

async function connect(resource: string, sub: string): Promise<Client> {
  const token = await issuer.token({ aud: resource, sub })
  const client = new Client({ name: 'stdio-bounds', version: '1.0.0' })
  await client.connect(
    new StreamableHTTPClientTransport(new URL(resource), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  )
  closers.push(() => client.close())
  return client
}

/** A raw `initialize` POST as `sub`: what opens a session (and would start a child). */
async function initialize(resource: string, sub: string): Promise<Response> {
  const token = await issuer.token({ aud: resource, sub })
  return fetch(resource, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(INITIALIZE),
  })
}

const text = (result: unknown) =>
  ((result as { content: { text?: string }[] }).content[0] as { text?: string }).text ?? ''

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Polls until `pid` has exited; the bound only keeps a broken build from hanging the suite. */
async function exited(pid: number): Promise<boolean> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (!running(pid)) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

describe('stdio children are capped', () => {
  it('refuses the (n+1)th session of one person with 429 and spawns nothing, then the total cap with 503', async () => {
    const record = recordFile('caps.log')
    const gw = await gateway({
      env: { GATEWAY_TEST_RECORD: record.path },
      maxChildrenPerPerson: 2,
      maxChildren: 3,
    })
    await connect(gw.resource, 'alice')
    await connect(gw.resource, 'alice')
    expect(record.started()).toBe(2)

    const third = await initialize(gw.resource, 'alice')
    expect(third.status).toBe(429)
    expect(third.headers.get('mcp-session-id')).toBeNull()
    const refusal = (await third.json()) as {
      jsonrpc: string
      error: { code: number; message: string }
    }
    expect(refusal.jsonrpc).toBe('2.0')
    expect(refusal.error.code).toBe(-32000)
    expect(refusal.error.message).toContain('2 MCP sessions')

    // Another person still gets one; its child announces itself before it answers initialize.
    const bob = await connect(gw.resource, 'bob')
    expect(record.started()).toBe(3)

    const carol = await initialize(gw.resource, 'carol')
    expect(carol.status).toBe(503)
    expect(((await carol.json()) as { error: { code: number } }).error.code).toBe(-32000)

    // A session that ends frees its place.
    await (bob.transport as StreamableHTTPClientTransport).terminateSession()
    const again = await connect(gw.resource, 'carol')
    expect(text(await again.callTool({ name: 'echo', arguments: { text: 'in' } }))).toBe('echo: in')
    // Exactly the children of the sessions that were let in: none for the refused ones.
    expect(record.started()).toBe(4)
  })
})

describe('idle stdio children are stopped', () => {
  it('ends a child idle past the timeout; its session then reads as not found', async () => {
    const gw = await gateway({ idleTimeoutMs: 200 })
    const token = await issuer.token({ aud: gw.resource, sub: 'dora' })
    const opened = await initialize(gw.resource, 'dora')
    const session = opened.headers.get('mcp-session-id') as string
    await opened.text()
    const headers = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
    }
    const whoami = await fetch(gw.resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'whoami' },
      }),
    })
    const pid = Number(/"text":"(\d+)"/.exec(await whoami.text())?.[1])
    expect(pid).toBeGreaterThan(0)

    expect(await exited(pid)).toBe(true)
    const after = await fetch(gw.resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }),
    })
    expect(after.status).toBe(404)
    expect(((await after.json()) as { error: { code: number } }).error.code).toBe(-32001)
  })
})

describe('stdio children get a minimal environment', () => {
  it('a child does not see DEPUTY_MASTER_KEY or anything else of the parent beyond PATH, HOME, LANG', async () => {
    process.env.DEPUTY_MASTER_KEY = 'parent-secret-master-key'
    process.env.GATEWAY_TEST_PARENT_ONLY = 'parent-only'
    try {
      const plain = await gateway({})
      const given = await gateway({ env: { GATEWAY_TEST_GIVEN: 'given' } })
      for (const [gw, extra] of [
        [plain, undefined],
        [given, 'given'],
      ] as const) {
        const client = await connect(gw.resource, 'erin')
        const env = JSON.parse(text(await client.callTool({ name: 'environment', arguments: {} })))
        expect(env.DEPUTY_MASTER_KEY).toBeUndefined()
        expect(env.GATEWAY_TEST_PARENT_ONLY).toBeUndefined()
        expect(Object.keys(env).filter((name) => name.startsWith('DEPUTY_'))).toEqual([])
        expect(env.GATEWAY_TEST_GIVEN).toBe(extra)
        expect(env.PATH).toBe(process.env.PATH)
      }
    } finally {
      delete process.env.DEPUTY_MASTER_KEY
      delete process.env.GATEWAY_TEST_PARENT_ONLY
    }
  })

  it('refuses to pass a DEPUTY_* variable even when asked', () => {
    expect(() => childEnvironment({}, { DEPUTY_MASTER_KEY: 'x' })).toThrow(/never passed/)
    expect(() =>
      stdioUpstream({ command: process.execPath, env: { deputy_database: 'x' } }),
    ).toThrow(/never passed/)
  })
})

describe('deputy gateway --upstream-command (the CLI)', () => {
  let cli: ChildProcess | undefined
  afterEach(() => {
    if (cli?.pid !== undefined && cli.exitCode === null) cli.kill('SIGTERM')
  })

  it('passes --upstream-env and nothing of its own environment, and caps sessions per person', async () => {
    const record = recordFile('cli.log')
    cli = spawn(
      process.execPath,
      [
        BIN,
        'gateway',
        '--issuer',
        issuer.issuer,
        '--port',
        '0',
        '--upstream-command',
        `"${process.execPath}" "${UPSTREAM}"`,
        '--upstream-env',
        `GATEWAY_TEST_RECORD=${record.path}`,
        '--upstream-env',
        'GATEWAY_TEST_COPIED',
        '--max-children-per-person',
        '1',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          DEPUTY_MASTER_KEY: 'cli-parent-secret',
          GATEWAY_TEST_COPIED: 'copied',
          GATEWAY_TEST_PARENT_ONLY: 'parent-only',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    const port = await new Promise<number>((resolve, reject) => {
      let said = ''
      cli?.stderr?.setEncoding('utf8')
      cli?.stderr?.on('data', (chunk: string) => {
        said += chunk
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(said)
        if (match) resolve(Number(match[1]))
      })
      cli?.once('exit', (code) => reject(new Error(`deputy gateway exited (${code}): ${said}`)))
    })
    const resource = `http://localhost:${port}/mcp`
    const client = await connect(resource, 'frank')
    const env = JSON.parse(text(await client.callTool({ name: 'environment', arguments: {} })))
    expect(env.DEPUTY_MASTER_KEY).toBeUndefined()
    expect(env.GATEWAY_TEST_PARENT_ONLY).toBeUndefined()
    expect(env.GATEWAY_TEST_COPIED).toBe('copied')
    expect(env.GATEWAY_TEST_RECORD).toBe(record.path)
    const second = await initialize(resource, 'frank')
    expect(second.status).toBe(429)
    expect(record.started()).toBe(1)
  })

  it.each([
    [
      ['--upstream-env', 'DEPUTY_MASTER_KEY'],
      /--upstream-env DEPUTY_MASTER_KEY: Deputy's own settings/,
    ],
    [['--upstream-env', 'NOT_SET_ANYWHERE_42'], /NOT_SET_ANYWHERE_42 is not set/],
    [['--upstream-env', 'A B=c'], /NAME or NAME=value/],
    [['--max-children', '0'], /--max-children must be a positive whole number/],
    [['--idle-timeout', 'soon'], /--idle-timeout must be a positive whole number/],
    // Past 2^31 - 1 ms a Node timer fires at once: every child would be stopped straight away.
    [['--idle-timeout', '2147484'], /--idle-timeout must be at most 2147483/],
    [['--audit-failure', 'ignore'], /--audit-failure must be refuse or continue/],
  ])('refuses %j with one line', (flags, problem) => {
    const result = deputyCli([
      'gateway',
      '--issuer',
      'http://127.0.0.1:1',
      '--upstream-command',
      'node server.js',
      ...flags,
    ])
    expect(result.status).toBe(1)
    const said = lines(result.stderr)
    expect(said).toHaveLength(1)
    expect(said[0]).toMatch(problem)
  })

  it('refuses the stdio-only flags with an HTTP upstream', () => {
    const result = deputyCli([
      'gateway',
      '--issuer',
      'http://127.0.0.1:1',
      '--upstream',
      'http://127.0.0.1:2/mcp',
      '--idle-timeout',
      '60',
    ])
    expect(result.status).toBe(1)
    expect(lines(result.stderr)).toEqual([
      'deputy: --idle-timeout applies to --upstream-command only',
    ])
  })
})
