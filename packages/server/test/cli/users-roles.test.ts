import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDeputy } from '../../src/deputy.js'
import { verifyPassword } from '../../src/identity/passwords.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { testConfig } from '../helpers/deputy.js'
import { type CliResult, deputyCli, json, lines } from './run.js'

const PASSWORD = 'correct horse battery staple'

interface WireUser {
  id: string
  email: string
  name: string
  status: string
  roles: string[]
  permissions: string[]
  claims: Record<string, unknown>
}

// §8: the README's examples, verbatim, against a real database, then read back through Deputy.
describe('deputy users, roles and admin-keys (§8)', () => {
  let dir: string
  let db: string
  const masterKey = generateMasterKey()
  let run: (args: string[], input?: string) => CliResult

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-'))
    db = join(dir, 'deputy.db')
    run = (args, input) =>
      deputyCli(['--db', db, ...args], { env: { DEPUTY_MASTER_KEY: masterKey }, input, cwd: dir })
    expect(run(['migrate']).status).toBe(0)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  async function passwordWorks(email: string, password: string): Promise<boolean> {
    const deputy = await createDeputy(testConfig(db, { masterKey }), {
      logger: pino({ level: 'silent' }),
    })
    try {
      const user = await deputy.deps.users.findByEmail(email)
      return verifyPassword(await deputy.deps.users.passwordHashOf(user?.id as string), password)
    } finally {
      await deputy.close()
    }
  }

  it('adds a user with a password read from stdin', async () => {
    const added = run(
      ['users', 'add', 'alice@example.com', '--name', 'Alice', '--password-stdin'],
      `${PASSWORD}\n`,
    )
    expect(added.status).toBe(0)
    expect(lines(added.stdout)).toEqual([
      expect.stringMatching(/^added alice@example.com \(id .+\)$/),
    ])
    expect(await passwordWorks('alice@example.com', PASSWORD)).toBe(true)
  })

  it('adds a role with permissions and prints it as JSON', () => {
    const role = json<{ name: string; description: string; permissions: string[] }>(
      run([
        'roles',
        'add',
        'shop-admin',
        '--description',
        'Runs the shop',
        '--permission',
        'shop:admin',
        '--permission',
        'shop:refund',
        '--json',
      ]),
    )
    expect(role).toMatchObject({
      name: 'shop-admin',
      description: 'Runs the shop',
      permissions: ['shop:admin', 'shop:refund'],
    })
    const roles = json<{ name: string; permissions: string[] }[]>(run(['roles', 'list', '--json']))
    expect(roles.map((r) => [r.name, r.permissions])).toEqual([
      ['admin', ['deputy:admin']],
      ['shop-admin', ['shop:admin', 'shop:refund']],
    ])
    expect(run(['roles', 'list']).stdout).toMatch(
      /^shop-admin\s+shop:admin,shop:refund\s+Runs the shop$/m,
    )
  })

  it('sets roles and claims with the documented commands', () => {
    const withRoles = run(['users', 'set-roles', 'alice@example.com', 'shop-admin'])
    expect(withRoles.status).toBe(0)
    expect(withRoles.stdout).toBe(
      'alice@example.com has roles shop-admin; permissions shop:admin, shop:refund\n',
    )
    const withClaims = json<WireUser>(
      run([
        'users',
        'set-claims',
        'alice@example.com',
        '{"favorite_song":"Careless Whisper"}',
        '--json',
      ]),
    )
    expect(withClaims).toMatchObject({
      email: 'alice@example.com',
      roles: ['shop-admin'],
      permissions: ['shop:admin', 'shop:refund'],
      claims: { favorite_song: 'Careless Whisper' },
    })
  })

  it('adds a user with roles as JSON and lists everyone', () => {
    const bob = json<WireUser>(
      run([
        'users',
        'add',
        'Bob@Example.com',
        '--name',
        'Bob',
        '--roles',
        'admin,shop-admin',
        '--json',
      ]),
    )
    expect(bob).toMatchObject({
      email: 'bob@example.com',
      name: 'Bob',
      status: 'active',
      roles: ['admin', 'shop-admin'],
      permissions: ['deputy:admin', 'shop:admin', 'shop:refund'],
    })
    const list = json<WireUser[]>(run(['users', 'list', '--json']))
    expect(list.map((u) => u.email)).toEqual(['alice@example.com', 'bob@example.com'])
    expect(JSON.stringify(list)).not.toContain('argon2')
    expect(run(['users', 'list']).stdout).toMatch(
      /^alice@example.com\s+Alice\s+active\s+shop-admin\s/m,
    )
  })

  it('disables and enables a user', () => {
    expect(json<WireUser>(run(['users', 'disable', 'bob@example.com', '--json'])).status).toBe(
      'disabled',
    )
    expect(run(['users', 'enable', 'bob@example.com']).stdout).toBe(
      'bob@example.com is now active\n',
    )
  })

  it('describes and removes a role, and adds and removes a permission no role grants', () => {
    expect(
      run(['roles', 'add-permission', 'books:read', '--description', 'Read the books']).stdout,
    ).toBe('added permission books:read\n')
    expect(run(['roles', 'add', 'auditor', '--permission', 'books:read']).status).toBe(0)
    expect(run(['roles', 'set-description', 'auditor', 'Reads the books']).stdout).toBe(
      'role auditor: Reads the books\n',
    )
    expect(run(['users', 'set-roles', 'bob@example.com', 'auditor']).status).toBe(0)
    const granted = run(['roles', 'remove-permission', 'books:read'])
    expect(granted.status).not.toBe(0)
    expect(granted.stderr.trim().split('\n')).toHaveLength(1)
    expect(granted.stderr).toContain('books:read is granted by auditor')
    expect(run(['roles', 'remove', 'auditor']).stdout).toBe(
      'removed role auditor (1 person held it)\n',
    )
    expect(run(['roles', 'remove-permission', 'books:read']).stdout).toBe(
      'removed permission books:read\n',
    )
    const admin = run(['roles', 'remove', 'admin'])
    expect(admin.status).not.toBe(0)
    expect(admin.stderr).toContain('the built-in admin role cannot be deleted')
    const bob = json<WireUser[]>(run(['users', 'list', '--json'])).find(
      (u) => u.email === 'bob@example.com',
    )
    expect(bob?.roles).toEqual([])
  })

  it('sets a new password from stdin; the old one stops working', async () => {
    const changed = run(
      ['users', 'set-password', 'alice@example.com', '--password-stdin'],
      'a brand new passphrase\n',
    )
    expect(changed.status).toBe(0)
    expect(await passwordWorks('alice@example.com', 'a brand new passphrase')).toBe(true)
    expect(await passwordWorks('alice@example.com', PASSWORD)).toBe(false)
  })

  it('creates an admin API key shown once, which opens the admin API until revoked', async () => {
    const created = run(['admin-keys', 'create', '--name', 'ci'])
    expect(created.status).toBe(0)
    const key = created.stdout.trim()
    expect(lines(created.stdout)).toEqual([expect.stringMatching(/^dpk_[A-Za-z0-9_-]{43}$/)])
    expect(created.stderr).toMatch(/shown only this once/)

    const listed = json<{ id: string; name: string; revoked_at: string | null }[]>(
      run(['admin-keys', 'list', '--json']),
    )
    expect(listed).toMatchObject([{ name: 'ci', revoked_at: null }])
    expect(JSON.stringify(listed)).not.toContain(key)
    const id = listed[0]?.id as string

    const deputy = await createDeputy(testConfig(db, { masterKey }), {
      logger: pino({ level: 'silent' }),
    })
    try {
      const request = () =>
        deputy.app.request('/admin/api/users', { headers: { authorization: `Bearer ${key}` } })
      expect((await request()).status).toBe(200)
      const revoked = json<{ revoked_at: string | null }>(
        run(['admin-keys', 'revoke', id, '--json']),
      )
      expect(revoked.revoked_at).not.toBeNull()
      expect((await request()).status).toBe(401)
    } finally {
      await deputy.close()
    }
    const again = run(['admin-keys', 'revoke', id])
    expect(again.status).toBe(1)
    expect(lines(again.stderr)).toEqual([`deputy: admin API key ${id} is already revoked`])
  })
})
