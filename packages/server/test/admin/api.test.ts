import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const SYSTEM = { type: 'system', id: 'test' } as const

describe('admin API with an admin API key (§9)', () => {
  let deputy: TestDeputy
  let key: string
  let keyId: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    const created = await createAdminApiKeys(deputy.deps).create('ci', SYSTEM)
    key = created.key
    keyId = created.id
  })
  afterAll(() => deputy?.dispose())

  function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    return deputy.app.request(`/admin/api${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
  }

  async function expectError(res: Response, status: number, message: string | RegExp) {
    expect(res.status).toBe(status)
    const body = (await res.json()) as { error: string; message: string }
    expect(typeof body.error).toBe('string')
    if (typeof message === 'string') expect(body.message).toBe(message)
    else expect(body.message).toMatch(message)
  }

  describe('authentication', () => {
    it('answers 401 with a Bearer challenge when no credentials are sent', async () => {
      const res = await deputy.app.request('/admin/api/users')
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="deputy-admin"')
      await expectError(res, 401, 'sign in, or send "Authorization: Bearer <admin API key>"')
    })

    it('answers 401 for a wrong key and for a malformed Authorization header', async () => {
      await expectError(
        await call('GET', '/users', undefined, { authorization: 'Bearer dpk_wrong' }),
        401,
        'the admin API key is not valid or has been revoked',
      )
      await expectError(
        await call('GET', '/users', undefined, { authorization: `Basic ${key}` }),
        401,
        'the Authorization header must be "Bearer <admin API key>"',
      )
    })

    it('refuses a revoked key at once', async () => {
      const keys = createAdminApiKeys(deputy.deps)
      const other = await keys.create('temporary', SYSTEM)
      const auth = { authorization: `Bearer ${other.key}` }
      expect((await call('GET', '/roles', undefined, auth)).status).toBe(200)
      await keys.revoke(other.id, SYSTEM)
      await expectError(
        await call('GET', '/roles', undefined, auth),
        401,
        'the admin API key is not valid or has been revoked',
      )
    })

    it('stores only the SHA-256 digest of a key and records when it was used', async () => {
      const rows = await deputy.deps.db.selectFrom('admin_api_keys').selectAll().execute()
      expect(JSON.stringify(rows)).not.toContain(key)
      await call('GET', '/users')
      const listed = await createAdminApiKeys(deputy.deps).list()
      expect(listed.find((k) => k.id === keyId)?.lastUsedAt).not.toBeNull()
    })
  })

  describe('users', () => {
    it('creates, lists, reads, renames and disables a user, each change audited with the key', async () => {
      const created = await call('POST', '/users', {
        email: 'Alice@Example.com',
        name: 'Alice',
        password: 'correct horse battery',
      })
      expect(created.status).toBe(201)
      const alice = (await created.json()) as Record<string, unknown>
      expect(alice).toMatchObject({
        email: 'alice@example.com',
        name: 'Alice',
        status: 'active',
        roles: [],
        claims: {},
      })
      expect(alice).not.toHaveProperty('password')
      expect(alice).not.toHaveProperty('password_hash')
      expect(alice.created_at).toEqual(expect.any(String))

      const list = (await (await call('GET', '/users')).json()) as { users: { email: string }[] }
      expect(list.users.map((u) => u.email)).toContain('alice@example.com')
      const one = await call('GET', `/users/${alice.id}`)
      expect(((await one.json()) as { email: string }).email).toBe('alice@example.com')

      const patched = await call('PATCH', `/users/${alice.id}`, {
        name: 'Alice A.',
        status: 'disabled',
      })
      expect(patched.status).toBe(200)
      expect(await patched.json()).toMatchObject({ name: 'Alice A.', status: 'disabled' })

      const events = await deputy.deps.db
        .selectFrom('audit_events')
        .select(['type', 'actor'])
        .where('target', 'like', `%${alice.id}%`)
        .orderBy('seq')
        .execute()
      expect(events.map((e) => e.type)).toEqual(['user.created', 'user.renamed', 'user.disabled'])
      for (const event of events)
        expect(JSON.parse(event.actor)).toEqual({
          type: 'system',
          id: `admin-key:${keyId}`,
          label: 'ci',
        })
    })

    it('sets roles and claims; permissions follow the roles', async () => {
      await call('POST', '/roles', { name: 'shop-admin', permissions: ['shop:admin'] })
      const bob = (await (
        await call('POST', '/users', { email: 'bob@example.com', name: 'Bob' })
      ).json()) as { id: string }

      const withRoles = await call('PUT', `/users/${bob.id}/roles`, { roles: ['shop-admin'] })
      expect(withRoles.status).toBe(200)
      expect(await withRoles.json()).toMatchObject({
        roles: ['shop-admin'],
        permissions: ['shop:admin'],
      })

      const withClaims = await call('PUT', `/users/${bob.id}/claims`, {
        claims: { favorite_song: 'Careless Whisper' },
      })
      expect(withClaims.status).toBe(200)
      expect(await withClaims.json()).toMatchObject({
        claims: { favorite_song: 'Careless Whisper' },
      })
    })

    it('answers 400 naming the field for bad input', async () => {
      await expectError(
        await call('POST', '/users', { email: 'nope', name: 'X' }),
        400,
        'email is not a valid email address',
      )
      await expectError(
        await call('POST', '/users', { email: 'x@example.com' }),
        400,
        'name is required',
      )
      await expectError(
        await call('POST', '/users', { email: 'x@example.com', name: 'X', password: 'short' }),
        400,
        'password must be at least 10 characters',
      )
      await expectError(
        await call('POST', '/users', { email: 'x@example.com', name: 'X', stauts: 'active' }),
        400,
        'stauts is not a known field',
      )
      await expectError(await call('POST', '/users', '{not json'), 400, /must be a JSON object/)
      const bob = (await (await call('GET', '/users')).json()) as { users: { id: string }[] }
      const id = bob.users[0]?.id as string
      await expectError(
        await call('PATCH', `/users/${id}`, { status: 'banned' }),
        400,
        /^status: invalid option/,
      )
      await expectError(
        await call('PATCH', `/users/${id}`, {}),
        400,
        'the request body must set name or status',
      )
      await expectError(
        await call('PUT', `/users/${id}/roles`, { roles: ['wizard'] }),
        400,
        /^unknown role: wizard/,
      )
      await expectError(
        await call('PUT', `/users/${id}/claims`, { claims: { sub: 'x' } }),
        400,
        'claims "sub" is a reserved claim and cannot be set',
      )
      await expectError(
        await call('PUT', `/users/${id}/claims`, { claims: ['a'] }),
        400,
        /^claims: invalid input/,
      )
      expect(await deputy.deps.users.findByEmail('x@example.com')).toBeUndefined()
    })

    it('answers 404 for an unknown user and 409 for a duplicate email', async () => {
      await expectError(await call('GET', '/users/nope'), 404, 'no user with id nope')
      await expectError(
        await call('PUT', '/users/nope/roles', { roles: [] }),
        404,
        'no user with id nope',
      )
      await call('POST', '/users', { email: 'carol@example.com', name: 'Carol' })
      await expectError(
        await call('POST', '/users', { email: 'CAROL@example.com', name: 'Carol' }),
        409,
        'a user with email carol@example.com already exists',
      )
    })
  })

  describe('roles and permissions', () => {
    it('creates and lists roles and permissions, and replaces a role’s permissions', async () => {
      const permission = await call('POST', '/permissions', {
        name: 'tickets:write',
        description: 'Answer tickets',
      })
      expect(permission.status).toBe(201)
      const role = await call('POST', '/roles', {
        name: 'support',
        description: 'Support desk',
        permissions: ['tickets:read'],
      })
      expect(role.status).toBe(201)
      expect(await role.json()).toMatchObject({ name: 'support', permissions: ['tickets:read'] })

      const replaced = await call('PUT', '/roles/support/permissions', {
        permissions: ['tickets:read', 'tickets:write'],
      })
      expect(await replaced.json()).toMatchObject({
        permissions: ['tickets:read', 'tickets:write'],
      })

      const roles = (await (await call('GET', '/roles')).json()) as {
        roles: { name: string; permissions: string[] }[]
      }
      expect(roles.roles.find((r) => r.name === 'support')?.permissions).toEqual([
        'tickets:read',
        'tickets:write',
      ])
      const permissions = (await (await call('GET', '/permissions')).json()) as {
        permissions: { name: string; roles: string[] }[]
      }
      expect(permissions.permissions.find((p) => p.name === 'tickets:write')?.roles).toEqual([
        'support',
      ])
    })

    it('answers 400, 404 and 409 as fitting', async () => {
      await expectError(
        await call('POST', '/roles', { name: 'has space' }),
        400,
        /^name must be 1–64 letters/,
      )
      await expectError(
        await call('POST', '/roles', { name: 'support' }),
        409,
        'a role named support already exists',
      )
      await expectError(
        await call('POST', '/permissions', { name: 'tickets:write' }),
        409,
        'a permission named tickets:write already exists',
      )
      await expectError(
        await call('PUT', '/roles/ghost/permissions', { permissions: [] }),
        404,
        /^unknown role: ghost/,
      )
      await expectError(
        await call('PUT', '/roles/support/permissions', { permissions: ['tickets:typo'] }),
        400,
        /^unknown permission: tickets:typo/,
      )
      await expectError(
        await call('PUT', '/roles/support/permissions', { permissions: 'tickets:read' }),
        400,
        /^permissions: invalid input/,
      )
    })
  })

  describe('describing and deleting roles and permissions', () => {
    it('changes a description, deletes a role its holders lose, and a permission no role grants', async () => {
      await call('POST', '/roles', { name: 'auditor', permissions: ['books:read'] })
      const user = await deputy.deps.users.create(
        { email: 'ivy@example.com', name: 'Ivy', roles: ['auditor'] },
        { type: 'system', id: 'test' },
      )
      const described = await call('PATCH', '/roles/auditor', { description: 'Reads the books' })
      expect(described.status).toBe(200)
      expect(await described.json()).toMatchObject({ description: 'Reads the books' })

      await expectError(
        await call('DELETE', '/permissions/books:read'),
        409,
        'the permission books:read is granted by auditor: take it from that role first',
      )
      const deleted = await call('DELETE', '/roles/auditor')
      expect(deleted.status).toBe(204)
      expect(await deleted.text()).toBe('')
      expect((await deputy.deps.users.findById(user.id))?.roles).toEqual([])
      expect((await call('DELETE', '/permissions/books:read')).status).toBe(204)
      const left = (await (await call('GET', '/permissions')).json()) as {
        permissions: { name: string }[]
      }
      expect(left.permissions.map((p) => p.name)).not.toContain('books:read')
    })

    it('refuses to delete the admin role or deputy:admin, and names what is unknown', async () => {
      await expectError(
        await call('DELETE', '/roles/admin'),
        400,
        'the built-in admin role cannot be deleted',
      )
      await expectError(
        await call('DELETE', `/permissions/${encodeURIComponent('deputy:admin')}`),
        400,
        'the permission deputy:admin cannot be deleted',
      )
      await expectError(await call('DELETE', '/roles/ghost'), 404, 'unknown role: ghost')
      await expectError(
        await call('DELETE', '/permissions/ghost'),
        404,
        'unknown permission: ghost',
      )
      await expectError(
        await call('PATCH', '/roles/ghost', { description: 'x' }),
        404,
        /^unknown role: ghost/,
      )
      await expectError(
        await call('PATCH', '/roles/admin', { description: 'x'.repeat(501) }),
        400,
        'description must be at most 500 characters',
      )
      expect((await deputy.deps.roles.find('admin'))?.permissions).toEqual(['deputy:admin'])
    })
  })

  describe('openapi.json', () => {
    it('lists every route, generated from the request schemas', async () => {
      const res = await deputy.app.request('/admin/api/openapi.json')
      expect(res.status).toBe(200)
      const doc = (await res.json()) as {
        openapi: string
        paths: Record<string, Record<string, Record<string, unknown>>>
      }
      expect(doc.openapi).toBe('3.1.0')
      const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
      )
      expect(routes.sort()).toEqual(
        [
          'GET /openapi.json',
          'GET /users',
          'POST /users',
          'GET /users/{id}',
          'PATCH /users/{id}',
          'PUT /users/{id}/roles',
          'PUT /users/{id}/claims',
          'GET /roles',
          'POST /roles',
          'PUT /roles/{name}/permissions',
          'PATCH /roles/{name}',
          'DELETE /roles/{name}',
          'GET /permissions',
          'POST /permissions',
          'DELETE /permissions/{name}',
          'GET /policies',
          'POST /policies',
          'POST /policies/validate',
          'GET /policies/{id}',
          'DELETE /policies/{id}',
          'GET /policies/{id}/versions',
          'GET /policy/schema',
          'GET /policy/actions',
          'POST /policy/actions',
          'POST /policy/explain',
          'POST /policy/authorize',
          'POST /policy/simulate',
          'POST /policy/filter-readable',
          'GET /relations',
          'POST /relations',
          'POST /relations/delete',
          'POST /relations/check',
          'POST /relations/list-objects',
          'POST /relations/filter',
          'GET /approvals',
          'GET /approvals/{id}',
          'POST /approvals/{id}/approve',
          'POST /approvals/{id}/deny',
          'GET /resources/{uri}/detail-types',
          'PUT /resources/{uri}/detail-types/{type}',
          'DELETE /resources/{uri}/detail-types/{type}',
          'GET /providers',
          'POST /providers',
          'GET /providers/{name}',
          'PATCH /providers/{name}',
          'DELETE /providers/{name}',
          'POST /providers/{name}/disable',
          'POST /providers/{name}/enable',
          'GET /trusted-issuers',
          'POST /trusted-issuers',
          'GET /trusted-issuers/{name}',
          'DELETE /trusted-issuers/{name}',
          'POST /trusted-issuers/{name}/rules',
          'DELETE /trusted-issuers/{name}/rules/{client}',
        ].sort(),
      )
      const createUser = doc.paths['/users']?.post as {
        requestBody: { content: { 'application/json': { schema: Record<string, unknown> } } }
      }
      const schema = createUser.requestBody.content['application/json'].schema
      expect(schema).toMatchObject({
        type: 'object',
        required: ['email', 'name'],
        additionalProperties: false,
      })
      expect(Object.keys(schema.properties as object)).toEqual([
        'email',
        'name',
        'password',
        'roles',
        'claims',
      ])
    })
  })
})
