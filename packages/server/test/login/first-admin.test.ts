import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { socketBrowser } from '../helpers/sign-in.js'

const ROOT = resolve(import.meta.dirname, '../../../..')
const BIN = join(ROOT, 'packages/server/bin/deputy.js')

interface Started {
  child: ChildProcess
  stderr: () => string
  exit: Promise<number | null>
}

/** Runs `deputy start --port 0` in an empty folder and waits until stderr contains `until`. */
async function startDeputy(
  dir: string,
  args: string[],
  env: Record<string, string>,
  until: RegExp,
) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('DEPUTY_') && k !== 'PORT'),
  )
  const child = spawn(process.execPath, [BIN, 'start', '--port', '0', ...args], {
    cwd: dir,
    env: { ...clean, DEPUTY_DATA_DIR: join(dir, 'data'), DEPUTY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  const exit = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  await new Promise<void>((ready, fail) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
      if (until.test(stderr)) ready()
    })
    void exit.then((code) => fail(new Error(`deputy start exited with ${code}: ${stderr}`)))
  })
  return { child, stderr: () => stderr, exit } satisfies Started
}

describe('first administrator on first start (issue 2 §2)', () => {
  let dir: string
  let running: Started | undefined

  beforeAll(() => {
    // The CLI runs the compiled package. Type errors are the type-check step's business; this only
    // needs dist/ to match the sources, and tsc emits even when it reports errors.
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    try {
      execFileSync(process.execPath, [tsc, '-b', 'packages/server'], { cwd: ROOT, stdio: 'pipe' })
    } catch (err) {
      if (!String((err as { stdout?: Buffer }).stdout ?? '').includes('error TS')) throw err
    }
  }, 120_000)

  afterEach(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL')
      await running.exit
    }
    running = undefined
    rmSync(dir, { recursive: true, force: true })
  })

  it('in development, creates admin@deputy.local, prints how to sign in, and the password works', async () => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-first-admin-'))
    running = await startDeputy(dir, [], {}, /password: +\S+/)
    const banner = running.stderr()
    const loginUrl = /Sign in as the first administrator at (http:\/\/localhost:\d+\/login)/.exec(
      banner,
    )?.[1]
    const password = /password: +(\S+)/.exec(banner)?.[1]
    expect(loginUrl).toBeDefined()
    expect(banner).toContain('email:      admin@deputy.local')
    expect(banner).toContain('deputy users set-password admin@deputy.local --password-stdin')
    // The sign-in lines come after the URL the server runs at.
    expect(banner.indexOf('Deputy is running at')).toBeLessThan(banner.indexOf('Sign in as'))

    // The issuer names the port really bound, and the server answers health and JWKS at once.
    const url = new URL(loginUrl ?? '')
    expect(url.port).not.toBe('0')
    url.hostname = '127.0.0.1'
    expect(await (await fetch(new URL('/healthz', url))).json()).toEqual({ status: 'ok' })
    const jwks = (await (await fetch(new URL('/jwks', url))).json()) as { keys: unknown[] }
    expect(jwks.keys).toHaveLength(1)

    // Sign in over HTTP with what the banner said.
    const admin = socketBrowser(url)
    const signedIn = await admin.signIn('admin@deputy.local', password ?? '')
    expect(signedIn.status).toBe(303)
    const account = await admin.get('/account')
    expect(account.status).toBe(200)
    const page = await account.text()
    expect(page).toContain('Administrator')
    expect(page).toContain('admin@deputy.local')

    running.child.kill('SIGTERM')
    expect(await running.exit).toBe(0)

    // A second start finds the administrator and neither makes another nor prints a password.
    running = await startDeputy(dir, [], {}, /sign in: +http/)
    expect(running.stderr()).not.toMatch(/password: /)
    running.child.kill('SIGTERM')
    expect(await running.exit).toBe(0)
  })

  it('in production, creates nobody and prints how to create the first administrator', async () => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-first-admin-'))
    running = await startDeputy(
      dir,
      ['--production', '--issuer', 'https://deputy.example.com'],
      { DEPUTY_MASTER_KEY: generateMasterKey() },
      /--password-stdin/,
    )
    const banner = running.stderr()
    expect(banner).toContain(
      'deputy users add you@example.com --name "You" --roles admin --password-stdin',
    )
    expect(banner).not.toMatch(/password: /)
    expect(banner).not.toContain('admin@deputy.local')
    running.child.kill('SIGTERM')
    expect(await running.exit).toBe(0)
  })
})
