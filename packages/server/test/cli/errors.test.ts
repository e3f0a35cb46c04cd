import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { type CliResult, deputyCli, lines } from './run.js'

/** §8: a user's mistake is one line on stderr naming the problem and a non-zero exit. */
function expectOneLineError(result: CliResult, problem: string | RegExp): void {
  expect(result.status).toBe(1)
  const errorLines = lines(result.stderr)
  expect(errorLines).toHaveLength(1)
  expect(errorLines[0]).toMatch(/^deputy: /)
  if (typeof problem === 'string') expect(errorLines[0]).toBe(`deputy: ${problem}`)
  else expect(errorLines[0]).toMatch(problem)
  expect(result.stderr).not.toMatch(/\n\s+at /)
  expect(result.stdout).toBe('')
}

describe('deputy CLI mistakes (§8)', () => {
  let dir: string
  let run: (args: string[], input?: string) => CliResult

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-'))
    const env = { DEPUTY_MASTER_KEY: generateMasterKey() }
    const db = join(dir, 'deputy.db')
    run = (args, input) => deputyCli(['--db', db, ...args], { env, input, cwd: dir })
    expect(run(['migrate']).status).toBe(0)
    expect(run(['users', 'add', 'alice@example.com', '--name', 'Alice']).status).toBe(0)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('refuses a bad email', () => {
    expectOneLineError(
      run(['users', 'add', 'alice-at-example', '--name', 'Alice']),
      'email is not a valid email address',
    )
  })

  it('refuses an unknown role and says how to create it', () => {
    expectOneLineError(
      run(['users', 'set-roles', 'alice@example.com', 'shop-admin']),
      'unknown role: shop-admin (create it with `deputy roles add`)',
    )
    expectOneLineError(
      run(['users', 'add', 'bob@example.com', '--name', 'Bob', '--roles', 'admin,wizard']),
      /unknown role: wizard/,
    )
  })

  it('refuses claims that are not a JSON object', () => {
    expectOneLineError(
      run(['users', 'set-claims', 'alice@example.com', '{favorite_song: Careless Whisper}']),
      /^deputy: claims are not valid JSON \(.*\); expected an object like '\{"favorite_song":"Careless Whisper"\}'$/,
    )
    expectOneLineError(
      run(['users', 'set-claims', 'alice@example.com', '["a"]']),
      `claims must be a JSON object, like '{"favorite_song":"Careless Whisper"}'`,
    )
    expectOneLineError(
      run(['users', 'set-claims', 'alice@example.com', '{"sub":"x"}']),
      'claims "sub" is a reserved claim and cannot be set',
    )
  })

  it('refuses an unknown user, a duplicate user and a short password', () => {
    expectOneLineError(
      run(['users', 'disable', 'nobody@example.com']),
      'no user with email nobody@example.com',
    )
    expectOneLineError(
      run(['users', 'add', 'ALICE@example.com', '--name', 'Alice']),
      'a user with email alice@example.com already exists',
    )
    expectOneLineError(
      run(['users', 'set-password', 'alice@example.com', '--password-stdin'], 'short\n'),
      'password must be at least 10 characters',
    )
  })

  it('never takes a password as an argument', () => {
    expectOneLineError(
      run(['users', 'set-password', 'alice@example.com']),
      'pass --password-stdin and send the password on stdin (never as an argument)',
    )
    expectOneLineError(
      run(['users', 'add', 'carol@example.com', '--name', 'Carol', '--password', 'hunter2hunter2']),
      /unknown option '--password'/,
    )
  })

  it('says how to pass a value that begins with "-" (an id minted before ids avoided it)', () => {
    expectOneLineError(
      run(['approvals', 'show', '-ECc--zGJONpCx99A_Mg3A']),
      "unknown option '-ECc--zGJONpCx99A_Mg3A' (a value that begins with '-' goes after `--`, as in `deputy approvals show -- -ECc--zGJONpCx99A_Mg3A`)",
    )
    expectOneLineError(
      run(['approvals', 'show', '--', '-ECc--zGJONpCx99A_Mg3A']),
      'no approval request -ECc--zGJONpCx99A_Mg3A',
    )
  })

  it('refuses a role name with spaces and a duplicate role', () => {
    expectOneLineError(run(['roles', 'add', 'shop admin']), /^deputy: name must be 1–64 letters/)
    expectOneLineError(run(['roles', 'add', 'admin']), 'a role named admin already exists')
  })

  it('names a config file that cannot be read', () => {
    expectOneLineError(
      deputyCli(['--config', '/nope.json', 'users', 'list']),
      'config file /nope.json: no such file',
    )
  })

  it('names a config file that is not valid JSON', () => {
    const file = join(dir, 'broken.json')
    writeFileSync(file, '{ "port": 8080,, }')
    expectOneLineError(
      deputyCli(['--config', file, 'users', 'list']),
      new RegExp(`^deputy: config file ${file} is not valid JSON: `),
    )
  })

  it('refuses to run in production without a master key', () => {
    const empty = mkdtempSync(join(tmpdir(), 'deputy-empty-'))
    try {
      expect(deputyCli(['migrate'], { cwd: empty }).status).toBe(0)
      expectOneLineError(
        deputyCli(['users', 'list'], { cwd: empty, env: { DEPUTY_MODE: 'production' } }),
        /^deputy: no master key: in production set DEPUTY_MASTER_KEY/,
      )
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })
})
