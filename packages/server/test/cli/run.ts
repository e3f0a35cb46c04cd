import { execFile, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'

const BIN = fileURLToPath(new URL('../../bin/deputy.js', import.meta.url))

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the real `deputy` CLI (packages/server/dist; build with `tsc -b packages/server` first)
 * without the caller's DEPUTY_* settings, so only what the test passes counts. `input` is stdin.
 */
export function deputyCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): CliResult {
  const env = cleanEnv()
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...env, ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    // A safety net so a command that wrongly waits cannot hang the suite; not a timing assertion.
    timeout: 30_000,
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/**
 * deputyCli without blocking this process: for tests that serve HTTP from this process while the
 * CLI runs (a blocked event loop lets keep-alive timers fire late and reset connections).
 */
export function deputyCliAsync(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: options.cwd,
        env: { ...cleanEnv(), ...options.env },
        encoding: 'utf8',
        timeout: 30_000,
      },
      (_err, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    )
    child.stdin?.end(options.input ?? '')
  })
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('DEPUTY_') && name !== 'NODE_ENV') env[name] = value
  }
  return env
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '')
}

/** The JSON a command printed, after checking it succeeded quietly. */
export function json<T>(result: CliResult): T {
  expect(result.stderr).toBe('')
  expect(result.status).toBe(0)
  return JSON.parse(result.stdout) as T
}

/** A user's mistake: exit code 1 and exactly one line on stderr, no stack trace. */
export function oneLineError(result: CliResult, message: RegExp): void {
  expect(result.status).toBe(1)
  expect(lines(result.stderr)).toHaveLength(1)
  expect(result.stderr).toMatch(message)
  expect(result.stderr).not.toMatch(/\n\s+at /)
}
