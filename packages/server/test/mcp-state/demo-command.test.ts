import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seedDemo } from '../../src/cli/commands/demo.js'
import { deputyCli } from '../cli/run.js'
import { startTestDeputy } from '../helpers/deputy.js'
import { socketBrowser } from '../helpers/sign-in.js'

const ROOT = resolve(import.meta.dirname, '../../../..')
const BIN = join(ROOT, 'packages/server/bin/deputy.js')

interface Running {
  child: ChildProcess
  banner: string
  exit: Promise<number | null>
}

/** Runs `deputy demo` in `dir` until its banner is complete (the last line names the demo person). */
async function runDemo(dir: string, args: string[]): Promise<Running> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('DEPUTY_') && k !== 'PORT'),
  )
  const child = spawn(process.execPath, [BIN, 'demo', ...args], {
    cwd: dir,
    env: { ...clean, DEPUTY_DATA_DIR: join(dir, 'data'), DEPUTY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  const exit = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  await new Promise<void>((ready, fail) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
      if (/set-password demo@mcp\.shop --password-stdin\n/.test(stderr)) ready()
    })
    void exit.then((code) => fail(new Error(`deputy demo exited with ${code}: ${stderr}`)))
  })
  return { child, banner: stderr, exit }
}

async function stop(running: Running): Promise<void> {
  running.child.kill('SIGTERM')
  expect(await running.exit).toBe(0)
}

/** Signs in through the real sign-in form; the account page of the person, or the failure. */
async function signIn(base: URL, email: string, password: string): Promise<string> {
  const person = socketBrowser(base)
  expect((await person.signIn(email, password)).status).toBe(303)
  const account = await person.get('/account')
  expect(account.status).toBe(200)
  return account.text()
}

function listJson(dir: string, args: string[]): unknown[] {
  const result = deputyCli([...args, '--json'], {
    cwd: dir,
    env: { DEPUTY_DATA_DIR: join(dir, 'data') },
  })
  expect(result.stderr).toBe('')
  return JSON.parse(result.stdout) as unknown[]
}

describe('deputy demo (issue 4: the mcp.shop demo in one command)', () => {
  let dir: string
  let running: Running | undefined

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-demo-'))
    // The CLI runs the compiled package; tsc emits even when it reports type errors.
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    try {
      execFileSync(process.execPath, [tsc, '-b', 'packages/server'], { cwd: ROOT, stdio: 'pipe' })
    } catch (err) {
      if (!String((err as { stdout?: Buffer }).stdout ?? '').includes('error TS')) throw err
    }
  }, 120_000)

  afterAll(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL')
      await running.exit
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('prints the MCP URL and a password that signs the demo person in; a second run creates nothing', async () => {
    running = await runDemo(dir, ['--port', '0'])
    const first = running.banner
    const issuer = /Deputy is running at (http:\/\/localhost:(\d+))/.exec(first)
    expect(issuer?.[2]).toBeDefined()
    expect(issuer?.[2]).not.toBe('0')
    expect(first).toContain(`MCP server URL: ${issuer?.[1]}/mcp`)
    expect(first).toContain(
      'seeded:         resource created, role shop-admin created, person demo@mcp.shop created',
    )
    const password = /email: +demo@mcp\.shop\n +password: +(\S+)/.exec(first)?.[1] ?? ''
    expect(password.length).toBeGreaterThanOrEqual(20)

    const base = new URL(`http://127.0.0.1:${issuer?.[2]}`)
    const page = await signIn(base, 'demo@mcp.shop', password)
    expect(page).toContain('Demo Shopper')
    await stop(running)

    // A second run on the same data folder (and port, so the issuer is the same).
    running = await runDemo(dir, ['--port', issuer?.[2] ?? ''])
    const second = running.banner
    expect(second).toContain(
      'seeded:         resource already there, role shop-admin already there, person demo@mcp.shop already there',
    )
    expect(second).toContain('Sign in as demo@mcp.shop with the password shown when it was created')
    // No password is printed again, neither the demo person's nor the first administrator's.
    expect(second).not.toMatch(/password: +\S/)
    // The password from the first run still works.
    expect(await signIn(base, 'demo@mcp.shop', password)).toContain('demo@mcp.shop')
    await stop(running)
    running = undefined

    expect(listJson(dir, ['resources', 'list'])).toEqual([
      {
        uri: `${issuer?.[1]}/mcp`,
        name: 'mcp.shop',
        scopes: {
          'shop:admin': "See your account details and switch the shop's demo mode",
          'shop:order': 'Order T-shirts for you',
          'shop:read': "See the shop's inventory and your orders",
        },
        claims_template: ['name', 'email', 'roles', 'permissions', 'favorite_song'],
        is_default: true,
      },
    ])
    const roles = listJson(dir, ['roles', 'list']) as { name: string; permissions: string[] }[]
    expect(roles.filter((r) => r.name === 'shop-admin')).toEqual([
      expect.objectContaining({ name: 'shop-admin', permissions: ['shop:admin'] }),
    ])
    const users = listJson(dir, ['users', 'list']) as { email: string }[]
    expect(users.map((u) => u.email)).toEqual(['admin@deputy.local', 'demo@mcp.shop'])
    // Nothing was registered or created twice: one audit event each.
    const audit = deputyCli(['audit', 'tail', '-n', '100'], {
      cwd: dir,
      env: { DEPUTY_DATA_DIR: join(dir, 'data') },
    }).stdout
    expect(audit.match(/resource\.registered/g)).toHaveLength(1)
    expect(audit.match(/role\.created/g)).toHaveLength(1)
    expect(audit.match(/user\.created/g)).toHaveLength(2)
  })
})

describe('seedDemo', () => {
  it('gives the demo person the shop-admin role, shop:admin and a favourite song for the token', async () => {
    const deputy = await startTestDeputy()
    try {
      const seed = await seedDemo(deputy.deps, deputy.config.issuer)
      expect(seed.resource).toMatchObject({ uri: 'http://localhost:8080/mcp', isDefault: true })
      // A client that sends no `resource` gets a token for the shop.
      expect((await deputy.deps.resources.resolve([])).uri).toBe('http://localhost:8080/mcp')
      const person = await deputy.deps.users.findByEmail('demo@mcp.shop')
      expect(person).toMatchObject({
        name: 'Demo Shopper',
        roles: ['shop-admin'],
        permissions: ['shop:admin'],
        claims: { favorite_song: 'Careless Whisper' },
      })
      // Seeding again changes nothing and reveals no password.
      const again = await seedDemo(deputy.deps, deputy.config.issuer)
      expect(again).toMatchObject({
        resourceChange: 'unchanged',
        roleCreated: false,
        person: { email: 'demo@mcp.shop', created: false },
      })
      expect(again.person).not.toHaveProperty('password')
    } finally {
      await deputy.dispose()
    }
  })
})
