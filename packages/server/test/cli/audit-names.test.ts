import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browser } from '../helpers/sign-in.js'
import {
  ADMIN,
  basic,
  createWorld,
  issueCode,
  postForm,
  redeem,
  type World,
} from '../oauth/token-helpers.js'
import { deputyCli } from './run.js'

/** The rows of `deputy audit tail`'s table, cut at the header's column starts. */
function tailRows(stdout: string): Record<string, string>[] {
  const [header = '', ...rows] = stdout.trimEnd().split('\n')
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({
    name: m[0].toLowerCase(),
    start: m.index,
  }))
  return rows.map((row) =>
    Object.fromEntries(
      columns.map((c, i) => [c.name, row.slice(c.start, columns[i + 1]?.start).trim()]),
    ),
  )
}

const NAME = /^(user:[^\s@]+@\S+|client:client_\S+|operator:(cli|admin-key:\S+)|system:\S+)$/

// Issue 10 §7: the same kind of name for actor and person on every row, whichever module wrote it
// (the CLI, the admin API, sign-in, the token endpoint), though each records its actor differently.
describe('deputy audit tail names actors and people alike on every row (issue 10 §7)', () => {
  let world: World
  let rows: Record<string, string>[]
  let aliceId: string
  let adminKeyId: string

  beforeAll(async () => {
    world = await createWorld()
    const { deps, app } = world.deputy
    aliceId = world.alice.id
    await deps.users.setPassword('alice@example.com', 'a long passphrase', ADMIN)
    // Sign-in records the person with their email as the label.
    const signedIn = await browser(world.deputy).signIn('alice@example.com', 'a long passphrase')
    expect(signedIn.status).toBe(303)
    // The token endpoint records the client with its name, and the person by id only.
    const { code } = await issueCode(world)
    expect((await redeem(world, code)).status).toBe(200)
    const machine = await postForm(
      world,
      '/token',
      { grant_type: 'client_credentials', scope: 'tools:read' },
      basic(world.agent.client.clientId, world.agent.secret),
    )
    expect(machine.status).toBe(200)
    // The admin API records an admin key by its id.
    const key = await deps.adminApiKeys.create('ci', ADMIN)
    adminKeyId = key.id
    const role = await app.request('/admin/api/roles', {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'support' }),
    })
    expect(role.status).toBe(201)
    const env = { DEPUTY_MASTER_KEY: world.deputy.config.masterKey as string }
    const url = world.deputy.database.url
    // The CLI records itself as a system actor with the OS account as its label.
    expect(
      deputyCli(['--db', url, 'users', 'add', 'bob@example.com', '--name', 'Bob'], { env }).status,
    ).toBe(0)
    const tail = deputyCli(['--db', url, 'audit', 'tail', '-n', '100'], { env })
    expect(tail.stderr).toBe('')
    rows = tailRows(tail.stdout)
  })
  afterAll(() => world.deputy.dispose())

  it('every actor and every person is <kind>:<email | client_id | operator | system id>', () => {
    expect(rows.length).toBeGreaterThan(8)
    for (const row of rows) {
      expect(row.actor).toMatch(NAME)
      if (row.on_behalf_of !== '-') expect(row.on_behalf_of).toMatch(NAME)
    }
  })

  it('a person is named by email, also where the record holds only their id', () => {
    const issued = rows.filter((r) => r.type === 'token.issued')
    const forAlice = issued.find((r) => r.on_behalf_of !== '-')
    expect(forAlice).toMatchObject({
      actor: `client:${world.app.clientId}`,
      on_behalf_of: 'user:alice@example.com',
    })
    expect(rows.find((r) => r.type === 'login.succeeded')?.actor).toBe('user:alice@example.com')
    expect(
      rows.find((r) => r.type === 'user.created' && r.target === 'user:bob@example.com'),
    ).toBeDefined()
    expect(rows.map((r) => Object.values(r).join(' ')).join('\n')).not.toContain(aliceId)
  })

  it('a client is named by its client_id, not by its name (which the records also carry)', () => {
    const machine = rows.find(
      (r) => r.type === 'token.issued' && r.actor === `client:${world.agent.client.clientId}`,
    )
    expect(machine?.on_behalf_of).toBe('-')
    expect(rows.some((r) => /client:(Claude|Agent)\b/.test(r.actor ?? ''))).toBe(false)
  })

  it('operators are operator:cli and operator:admin-key:<id>; Deputy itself system:<id>', () => {
    expect(rows.find((r) => r.target === 'user:bob@example.com')?.actor).toBe('operator:cli')
    expect(rows.find((r) => r.type === 'role.created')?.actor).toBe(
      `operator:admin-key:${adminKeyId}`,
    )
    expect(rows.find((r) => r.type === 'user.created')?.actor).toBe(`system:${ADMIN.id}`)
  })
})
