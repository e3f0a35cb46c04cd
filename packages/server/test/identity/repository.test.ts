import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { createRoles, type Roles } from '../../src/identity/roles.js'
import type { Users } from '../../src/identity/users.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const actor: Actor = { type: 'user', id: 'operator-1', label: 'ops@example.com' }
const PASSWORD = 'correct horse battery staple'

// §3: one suite, run unchanged against every storage dialect.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `identity repository on ${dialect.name} (§3, §5)`,
    () => {
      let deputy: TestDeputy
      let users: Users
      let roles: Roles

      beforeAll(async () => {
        deputy = await startTestDeputy({ database: await dialect.create() })
        users = deputy.deps.users
        roles = createRoles(deputy.deps)
      })
      afterAll(() => deputy?.dispose())

      /** The audit events of a type about one target, oldest first. */
      async function eventsFor(type: string, targetId: string) {
        const rows = await deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', type)
          .orderBy('seq')
          .execute()
        return rows
          .map((r) => ({
            actor: JSON.parse(r.actor) as Actor,
            target: JSON.parse(r.target ?? 'null') as { id: string } | null,
            data: JSON.parse(r.data) as Record<string, unknown>,
          }))
          .filter((e) => e.target?.id === targetId)
      }

      it('creates a user found by email in any case, with an argon2id password and an audit event', async () => {
        const created = await users.create(
          { email: '  Alice@Example.COM ', name: 'Alice', password: PASSWORD },
          actor,
        )
        expect(created).toMatchObject({
          email: 'alice@example.com',
          name: 'Alice',
          status: 'active',
          roles: [],
          permissions: [],
          claims: {},
        })
        expect((await users.findByEmail('ALICE@example.com'))?.id).toBe(created.id)
        expect((await users.findById(created.id))?.email).toBe('alice@example.com')
        const hash = await users.passwordHashOf(created.id)
        expect(hash).toMatch(/^\$argon2id\$/)
        expect(hash).not.toContain(PASSWORD)

        const [event] = await eventsFor('user.created', created.id)
        expect(event?.actor).toEqual(actor)
        expect(event?.data).toEqual({ email: 'alice@example.com', roles: [] })
        expect(JSON.stringify(event)).not.toContain(PASSWORD)
      })

      it('refuses a second user with the same email in another case', async () => {
        await users.create({ email: 'bob@example.com', name: 'Bob' }, actor)
        await expect(
          users.create({ email: 'BOB@example.com', name: 'Bobby' }, actor),
        ).rejects.toMatchObject({
          code: 'ERR_CONFLICT',
          message: 'a user with email bob@example.com already exists',
        })
        expect((await users.list()).filter((u) => u.email === 'bob@example.com')).toHaveLength(1)
      })

      it('creates one user when several create the same email at once; the others get a conflict', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, (_, i) =>
            users.create({ email: 'race@example.com', name: `Racer ${i}` }, actor),
          ),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        for (const r of results.filter((r) => r.status === 'rejected'))
          expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_CONFLICT' })
        expect((await users.list()).filter((u) => u.email === 'race@example.com')).toHaveLength(1)
      })

      it('refuses invalid input with a message naming the field', async () => {
        await expect(
          users.create({ email: 'not-an-email', name: 'X' }, actor),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: 'email is not a valid email address',
        })
        await expect(
          users.create({ email: 'x@example.com', name: ' ' }, actor),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: 'name must not be empty',
        })
        await expect(
          users.create({ email: 'x@example.com', name: 'X', password: 'short' }, actor),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: /^password must be at least/,
        })
        expect(await users.findByEmail('x@example.com')).toBeUndefined()
      })

      it('adds a role, creating its missing permissions, and lists it with them', async () => {
        const role = await roles.add(
          {
            name: 'shop-admin',
            description: 'Runs the shop',
            permissions: ['shop:admin', 'shop:read', 'shop:read'],
          },
          actor,
        )
        expect(role).toMatchObject({
          name: 'shop-admin',
          description: 'Runs the shop',
          permissions: ['shop:admin', 'shop:read'],
        })
        const listed = await roles.list()
        expect(listed.map((r) => r.name)).toEqual(['admin', 'shop-admin'])
        expect(listed.find((r) => r.name === 'admin')?.permissions).toEqual(['deputy:admin'])
        const permissions = await roles.listPermissions()
        expect(permissions.find((p) => p.name === 'shop:read')?.roles).toEqual(['shop-admin'])

        const [created] = await eventsFor('role.created', 'shop-admin')
        expect(created).toEqual({
          actor,
          target: { type: 'role', id: 'shop-admin' },
          data: { name: 'shop-admin', permissions: ['shop:admin', 'shop:read'] },
        })
        expect(await eventsFor('permission.created', 'shop:admin')).toHaveLength(1)
      })

      it('refuses a duplicate role or permission and an unknown name', async () => {
        await expect(roles.add({ name: 'shop-admin' }, actor)).rejects.toMatchObject({
          code: 'ERR_CONFLICT',
          message: 'a role named shop-admin already exists',
        })
        await expect(roles.addPermission({ name: 'shop:read' }, actor)).rejects.toMatchObject({
          code: 'ERR_CONFLICT',
          message: 'a permission named shop:read already exists',
        })
        await expect(roles.add({ name: 'bad name!' }, actor)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: /^name must be 1–64 letters/,
        })
        await expect(roles.setPermissions('no-such-role', [], actor)).rejects.toMatchObject({
          code: 'ERR_NOT_FOUND',
          message: /^unknown role: no-such-role/,
        })
        await expect(
          roles.setPermissions('shop-admin', ['shop:admin', 'shop:typo'], actor),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: /^unknown permission: shop:typo/,
        })
        expect((await roles.find('shop-admin'))?.permissions).toEqual(['shop:admin', 'shop:read'])
      })

      it('adds permissions and lists them with the roles that grant them', async () => {
        const added = await roles.addPermission(
          { name: 'shop:refund', description: 'Refund orders' },
          actor,
        )
        expect(added).toMatchObject({
          name: 'shop:refund',
          description: 'Refund orders',
          roles: [],
        })
        const listed = await roles.listPermissions()
        expect(listed.map((p) => p.name)).toEqual(
          expect.arrayContaining(['deputy:admin', 'shop:admin', 'shop:read', 'shop:refund']),
        )
        expect(listed.find((p) => p.name === 'deputy:admin')?.roles).toEqual(['admin'])
        const [event] = await eventsFor('permission.created', 'shop:refund')
        expect(event?.actor).toEqual(actor)
      })

      it("gives a user the union of their roles' permissions, following role changes", async () => {
        await roles.add({ name: 'support', permissions: ['shop:read', 'tickets:write'] }, actor)
        const carol = await users.create(
          { email: 'carol@example.com', name: 'Carol', roles: ['support'] },
          actor,
        )
        expect(carol.permissions).toEqual(['shop:read', 'tickets:write'])

        const both = await users.setRoles('CAROL@example.com', ['shop-admin', 'support'], actor)
        expect(both.roles).toEqual(['shop-admin', 'support'])
        expect(both.permissions).toEqual(['shop:admin', 'shop:read', 'tickets:write'])

        await roles.setPermissions('shop-admin', ['shop:admin', 'shop:refund'], actor)
        expect((await users.findByEmail('carol@example.com'))?.permissions).toEqual([
          'shop:admin',
          'shop:read',
          'shop:refund',
          'tickets:write',
        ])

        const [rolesChanged] = await eventsFor('user.roles-changed', carol.id)
        expect(rolesChanged).toMatchObject({
          actor,
          data: { email: 'carol@example.com', roles: ['shop-admin', 'support'] },
        })
        const [permissionsChanged] = await eventsFor('role.permissions-changed', 'shop-admin')
        expect(permissionsChanged?.data).toEqual({
          name: 'shop-admin',
          permissions: ['shop:admin', 'shop:refund'],
        })
      })

      it('refuses an unknown role for a user and leaves their roles as they were', async () => {
        const dave = await users.create(
          { email: 'dave@example.com', name: 'Dave', roles: ['support'] },
          actor,
        )
        await expect(
          users.setRoles(dave.email, ['support', 'wizard'], actor),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: /^unknown role: wizard/,
        })
        await expect(
          users.create({ email: 'erin@example.com', name: 'Erin', roles: ['wizard'] }, actor),
        ).rejects.toMatchObject({ message: /^unknown role: wizard/ })
        expect((await users.findById(dave.id))?.roles).toEqual(['support'])
        expect(await users.findByEmail('erin@example.com')).toBeUndefined()
        await expect(users.setRoles('nobody@example.com', [], actor)).rejects.toMatchObject({
          code: 'ERR_NOT_FOUND',
          message: 'no user with email nobody@example.com',
        })
      })

      it('keeps deputy:admin on the built-in admin role', async () => {
        await expect(roles.setPermissions('admin', ['shop:read'], actor)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: 'permissions of the built-in admin role must include deputy:admin',
        })
        expect((await roles.find('admin'))?.permissions).toEqual(['deputy:admin'])
      })

      it('deletes a role in one step: its holders lose it and its permissions, the count audited', async () => {
        await roles.add({ name: 'temp-crew', permissions: ['crew:board'] }, actor)
        const gus = await users.create(
          { email: 'gus@example.com', name: 'Gus', roles: ['temp-crew'] },
          actor,
        )
        expect((await roles.holders()).get('temp-crew')).toBe(1)
        expect((await users.findById(gus.id))?.permissions).toContain('crew:board')
        await roles.setDescription('temp-crew', 'Boards for a day', actor)
        expect((await roles.find('temp-crew'))?.description).toBe('Boards for a day')

        expect(await roles.remove('temp-crew', actor)).toEqual({ holders: 1 })
        expect(await roles.find('temp-crew')).toBeUndefined()
        const after = await users.findById(gus.id)
        expect(after?.roles).toEqual([])
        expect(after?.permissions).toEqual([])
        expect(await eventsFor('role.deleted', 'temp-crew')).toEqual([
          {
            actor,
            target: { type: 'role', id: 'temp-crew' },
            data: { name: 'temp-crew', holders: 1 },
          },
        ])
        await expect(roles.remove('temp-crew', actor)).rejects.toMatchObject({
          code: 'ERR_NOT_FOUND',
        })
        await expect(roles.remove('admin', actor)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: 'the built-in admin role cannot be deleted',
        })
        await expect(roles.setDescription('temp-crew', 'x', actor)).rejects.toMatchObject({
          code: 'ERR_NOT_FOUND',
        })
      })

      it('deletes only a permission no role grants, never deputy:admin', async () => {
        await roles.add({ name: 'deckhand', permissions: ['deck:swab'] }, actor)
        await expect(roles.removePermission('deck:swab', actor)).rejects.toMatchObject({
          code: 'ERR_CONFLICT',
          message: 'the permission deck:swab is granted by deckhand: take it from that role first',
        })
        expect((await roles.find('deckhand'))?.permissions).toEqual(['deck:swab'])
        await roles.setPermissions('deckhand', [], actor)
        await roles.removePermission('deck:swab', actor)
        expect((await roles.listPermissions()).map((p) => p.name)).not.toContain('deck:swab')
        expect((await eventsFor('permission.deleted', 'deck:swab')).map((e) => e.data)).toEqual([
          { name: 'deck:swab' },
        ])
        await expect(roles.removePermission('deck:swab', actor)).rejects.toMatchObject({
          code: 'ERR_NOT_FOUND',
        })
        await expect(roles.removePermission('deputy:admin', actor)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
        })
      })

      it('a permission granted and deleted at the same moment: one wins in one line, no grant is lost', async () => {
        const outcomes = new Set<string>()
        for (let round = 0; round < 20; round++) {
          const permission = `race:p${round}`
          const role = `racer-${round}`
          await roles.addPermission({ name: permission }, actor)
          await roles.add({ name: role }, actor)
          const [granted, deleted] = await Promise.allSettled([
            roles.setPermissions(role, [permission], actor),
            roles.removePermission(permission, actor),
          ])
          const holds = (await roles.find(role))?.permissions.includes(permission)
          const exists = (await roles.listPermissions()).some((p) => p.name === permission)
          if (granted.status === 'fulfilled') {
            // The grant won: the delete was refused as in use, and the grant is still there.
            expect(deleted).toMatchObject({ status: 'rejected', reason: { code: 'ERR_CONFLICT' } })
            expect(holds && exists).toBe(true)
            outcomes.add('granted')
          } else {
            expect(granted.reason).toMatchObject({
              code: 'ERR_INVALID_INPUT',
              message: `unknown permission: ${permission} (add it first)`,
            })
            expect(deleted.status).toBe('fulfilled')
            expect(holds || exists).toBe(false)
            outcomes.add('deleted')
          }
        }
        expect(outcomes.size).toBeGreaterThan(0)
      })

      it('stores custom claims as JSON and audits which claims changed, not their values', async () => {
        const frank = await users.create({ email: 'frank@example.com', name: 'Frank' }, actor)
        const claims = { favorite_song: 'Careless Whisper', shoe: { size: 44, wide: true } }
        expect((await users.setClaims(frank.email, claims, actor)).claims).toEqual(claims)
        expect((await users.findById(frank.id))?.claims).toEqual(claims)

        await expect(
          users.setClaims(frank.email, { sub: 'someone-else' }, actor),
        ).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: 'claims "sub" is a reserved claim and cannot be set',
        })
        await expect(users.setClaims(frank.email, ['a'], actor)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: /^claims /,
        })
        expect((await users.findById(frank.id))?.claims).toEqual(claims)

        const events = await eventsFor('user.claims-changed', frank.id)
        expect(events).toHaveLength(1)
        expect(events[0]?.data).toEqual({
          email: 'frank@example.com',
          claims: ['favorite_song', 'shoe'],
        })
        expect(JSON.stringify(events[0])).not.toContain('Careless Whisper')
      })

      it('disables a user, ending their sessions, and enables them again', async () => {
        const grace = await users.create({ email: 'grace@example.com', name: 'Grace' }, actor)
        const now = Date.now()
        await deputy.deps.db
          .insertInto('sessions')
          .values({
            id_hash: `hash-${grace.id}`,
            user_id: grace.id,
            csrf_token: 'csrf',
            created_at: now,
            expires_at: now + 3_600_000,
            last_seen_at: now,
          })
          .execute()

        expect((await users.setStatus(grace.email, 'disabled', actor)).status).toBe('disabled')
        const sessions = await deputy.deps.db
          .selectFrom('sessions')
          .select('id_hash')
          .where('user_id', '=', grace.id)
          .execute()
        expect(sessions).toEqual([])
        expect((await users.findByEmail(grace.email))?.status).toBe('disabled')

        expect((await users.setStatus(grace.email, 'active', actor)).status).toBe('active')
        expect(await eventsFor('user.disabled', grace.id)).toMatchObject([{ actor }])
        expect(await eventsFor('user.enabled', grace.id)).toMatchObject([{ actor }])
      })

      it('renames a user and changes a password, each with its audit event', async () => {
        const heidi = await users.create(
          { email: 'heidi@example.com', name: 'Heidi', password: PASSWORD },
          actor,
        )
        const before = await users.passwordHashOf(heidi.id)
        expect((await users.setName(heidi.email, 'Heidi K.', actor)).name).toBe('Heidi K.')
        await users.setPassword(heidi.email, 'another long passphrase', actor)
        expect(await users.passwordHashOf(heidi.id)).not.toBe(before)

        expect(await eventsFor('user.renamed', heidi.id)).toMatchObject([{ actor }])
        const [changed] = await eventsFor('user.password-changed', heidi.id)
        expect(changed?.actor).toEqual(actor)
        expect(JSON.stringify(changed)).not.toContain('another long passphrase')
      })

      it('lists users by email', async () => {
        const emails = (await users.list()).map((u) => u.email)
        expect(emails).toEqual([...emails].sort())
        expect(emails).toContain('alice@example.com')
      })
    },
  )
}
