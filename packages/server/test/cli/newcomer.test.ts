import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { type CliResult, deputyCli, lines } from './run.js'

const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  .version as string

/** A mistake: one line on stderr, naming it; nothing on stdout; exit 1; no stack trace. */
function oneLineError(result: CliResult): string {
  expect(result.status).toBe(1)
  expect(result.stdout).toBe('')
  const said = lines(result.stderr)
  expect(said).toHaveLength(1)
  expect(result.stderr).not.toMatch(/\n\s+at /)
  return said[0] as string
}

// Issue 10 §7: what a newcomer tripped over, each as they would see it at the terminal.
describe('deputy CLI: what a newcomer tripped over (issue 10 §7)', () => {
  let dir: string
  let db: string
  const masterKey = generateMasterKey()
  let run: (args: string[], input?: string) => CliResult

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-newcomer-'))
    db = join(dir, 'deputy.db')
    run = (args, input) =>
      deputyCli(['--db', db, ...args], { cwd: dir, env: { DEPUTY_MASTER_KEY: masterKey }, input })
    expect(run(['migrate']).status).toBe(0)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('`deputy --version` and `-v` print the version of packages/server/package.json', () => {
    for (const flag of ['--version', '-v']) {
      const result = deputyCli([flag])
      expect(result).toMatchObject({ status: 0, stdout: `${VERSION}\n`, stderr: '' })
    }
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/)
  })

  describe('a --db path that does not exist', () => {
    let empty: string
    beforeAll(() => {
      empty = mkdtempSync(join(tmpdir(), 'deputy-typo-'))
    })
    afterAll(() => rmSync(empty, { recursive: true, force: true }))

    const typo = () => join(empty, 'typo', 'x.db')
    // No master key in the environment: a development command would generate one in
    // ./.deputy/master.key, the folder it runs in, so that is where to look for one too.
    const inEmpty = (args: string[], input?: string) =>
      deputyCli(['--db', typo(), ...args], { cwd: empty, input })

    it.each([
      [['users', 'list']],
      [['users', 'add', 'alice@example.com', '--name', 'Alice']],
      [['roles', 'list']],
      [['clients', 'list']],
      [['resources', 'list']],
      [['keys', 'list']],
      [['admin-keys', 'list']],
      [['policy', 'list']],
      [['relations', 'check', 'doc:plan#viewer@user:alice']],
      [['sweep']],
      [['audit', 'tail']],
      [['audit', 'verify']],
      [['audit', 'export', '--jsonl']],
      [['audit', 'digest', 'someone@example.com']],
    ])('%j is one line naming it and how to create it, and creates nothing', (args) => {
      expect(oneLineError(inEmpty(args))).toBe(
        `deputy: no database at ${typo()} (create it with \`deputy migrate --db ${typo()}\`)`,
      )
      expect(existsSync(typo())).toBe(false)
      expect(readdirSync(empty)).toEqual([])
    })

    it('`deputy gateway --db` refuses it before it starts', () => {
      const result = deputyCli(
        [
          '--db',
          typo(),
          'gateway',
          '--upstream',
          'http://127.0.0.1:1/mcp',
          '--issuer',
          'http://127.0.0.1:2',
          '--port',
          '0',
        ],
        { cwd: empty },
      )
      expect(oneLineError(result)).toMatch(/^deputy: no database at .*typo\/x\.db \(create it/)
      expect(readdirSync(empty)).toEqual([])
    })

    it('`deputy migrate --db` creates it, as the message says; then the command works', () => {
      const migrated = inEmpty(['migrate'])
      expect(migrated.status).toBe(0)
      expect(existsSync(typo())).toBe(true)
      // Migrating reads no secret, so it makes no master key either.
      expect(existsSync(join(empty, '.deputy'))).toBe(false)
      expect(inEmpty(['roles', 'list'])).toMatchObject({ status: 0, stderr: '' })
      rmSync(join(empty, 'typo'), { recursive: true, force: true })
      rmSync(join(empty, '.deputy'), { recursive: true, force: true })
    })
  })

  it('`policy test|explain|simulate --person` someone Deputy does not know says so', () => {
    expect(run(['users', 'add', 'alice@example.com', '--name', 'Alice']).status).toBe(0)
    const problem =
      'deputy: no person nobody@x.com: no user has this email or id (`deputy users list` shows them)'
    for (const verb of ['test', 'explain']) {
      expect(
        oneLineError(
          run([
            'policy',
            verb,
            '--person',
            'nobody@x.com',
            '--action',
            'read',
            '--resource',
            'doc:a',
          ]),
        ),
      ).toBe(problem)
    }
    expect(oneLineError(run(['policy', 'simulate', '--person', 'nobody@x.com']))).toBe(problem)
    // Someone Deputy knows gets the decision itself (here Cedar's default deny, on stdout).
    const known = run([
      'policy',
      'test',
      '--person',
      'alice@example.com',
      '--action',
      'read',
      '--resource',
      'doc:a',
    ])
    expect(known.stderr).toBe('')
    expect(known.stdout).toMatch(/^deny: Denied: no policy permits alice@example\.com to read/)
  })

  it('`users add` without a password says they cannot sign in until one is set, and how', () => {
    const added = run(['users', 'add', 'bob@example.com', '--name', 'Bob'])
    expect(added.status).toBe(0)
    expect(lines(added.stdout)).toEqual([
      expect.stringMatching(/^added bob@example\.com \(id .+\)$/),
      'bob@example.com cannot sign in until a password is set: deputy users set-password bob@example.com --password-stdin',
    ])
    // With a password, nothing to say.
    const withPassword = run(
      ['users', 'add', 'carol@example.com', '--name', 'Carol', '--password-stdin'],
      'a long passphrase\n',
    )
    expect(lines(withPassword.stdout)).toEqual([
      expect.stringMatching(/^added carol@example\.com \(id .+\)$/),
    ])
    // --json stays one JSON document.
    const asJson = run(['users', 'add', 'dan@example.com', '--name', 'Dan', '--json'])
    expect(JSON.parse(asJson.stdout)).toMatchObject({ email: 'dan@example.com' })
  })

  it('`clients add --scope` refuses a scope no resource offers, naming it and the known ones', () => {
    const add = (...flags: string[]) =>
      run([
        'clients',
        'add',
        '--name',
        'Nightly job',
        '--grant-type',
        'client_credentials',
        ...flags,
      ])
    expect(oneLineError(add('--scope', 'files:read'))).toBe(
      'deputy: --scope files:read: no resource offers it (no scope is offered yet; add scopes with `deputy resources add <uri> --scope name=description`)',
    )
    expect(
      run([
        'resources',
        'add',
        'http://localhost:3000/mcp',
        '--scope',
        'files:read=Read your files',
      ]).status,
    ).toBe(0)
    expect(
      run(['resources', 'add', 'http://localhost:3001/api', '--scope', 'api:read=Read the API'])
        .status,
    ).toBe(0)
    expect(oneLineError(add('--scope', 'files:read', '--scope', 'files:wrte'))).toBe(
      'deputy: --scope files:wrte: no resource offers it (known scopes: api:read, files:read; add scopes with `deputy resources add <uri> --scope name=description`)',
    )
    expect(
      oneLineError(add('--scope', 'api:read', '--resource', 'http://localhost:3000/mcp')),
    ).toBe(
      'deputy: --scope api:read: http://localhost:3000/mcp does not offer it (known scopes: files:read)',
    )
    expect(JSON.parse(run(['--json', 'clients', 'list']).stdout)).toEqual([])
    const ok = add('--scope', 'files:read', '--resource', 'http://localhost:3000/mcp')
    expect(ok.status).toBe(0)
    expect(lines(ok.stdout)[0]).toMatch(/^client_id: client_/)
  })

  it('`clients add --help` names every grant type a client can register for, CIBA, token exchange and jwt-bearer too', () => {
    const help = deputyCli(['clients', 'add', '--help']).stdout.replace(/\s+/g, ' ')
    for (const grant of [
      'authorization_code',
      'refresh_token',
      'client_credentials',
      'urn:openid:params:grant-type:ciba',
      'urn:ietf:params:oauth:grant-type:token-exchange',
      'urn:ietf:params:oauth:grant-type:jwt-bearer (repeatable)',
    ]) {
      expect(help).toContain(grant)
    }
  })
})
