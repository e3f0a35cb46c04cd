import { z } from 'zod'
import { DeputyError } from '../lib/errors.js'
import { type ChangeActor, NameSchema, parseInput, type UsersDeps } from './users.js'

/** A role: a named set of permissions that users are given. */
export interface Role {
  name: string
  description: string
  permissions: string[]
  createdAt: string
}

/** A permission: a name that roles grant and tokens and policies check. */
export interface Permission {
  name: string
  description: string
  /** The roles that grant it. */
  roles: string[]
  createdAt: string
}

export interface AddRoleInput {
  name: string
  description?: string
  /** Granted to the role; names not yet known are created. */
  permissions?: string[]
}

export interface AddPermissionInput {
  name: string
  description?: string
}

/** The built-in administrator role and the permission that opens the admin API. */
export const ADMIN_ROLE = 'admin'
export const ADMIN_PERMISSION = 'deputy:admin'

export const DescriptionSchema = z.string().trim().max(500, 'must be at most 500 characters')

/** The roles and permissions repository: every change is one transaction and one audit event. */
export function createRoles(deps: UsersDeps) {
  const { store, clock, audit } = deps
  const db = store.db

  async function permissionsByRole(roles?: string[]): Promise<Map<string, string[]>> {
    let query = db.selectFrom('role_permissions').select(['role', 'permission'])
    if (roles) query = query.where('role', 'in', roles)
    const rows = await query.orderBy('permission').execute()
    const byRole = new Map<string, string[]>()
    for (const row of rows) byRole.set(row.role, [...(byRole.get(row.role) ?? []), row.permission])
    return byRole
  }

  async function requireRole(name: string): Promise<void> {
    const role = await db
      .selectFrom('roles')
      .select('name')
      .where('name', '=', name)
      .executeTakeFirst()
    if (!role) {
      throw new DeputyError(
        'ERR_NOT_FOUND',
        `unknown role: ${name} (create it with \`deputy roles add\`)`,
      )
    }
  }

  /**
   * Refuses names that are not permissions. Inside a transaction that then grants them, pass it
   * as `executor`: on PostgreSQL the rows are share-locked, so a permission deleted at the same
   * moment is either refused here in one line or waits for the grant (then is in use and stays),
   * never a foreign-key failure at the insert (SQLite's writer lock already serialises both).
   */
  async function requirePermissions(names: string[], executor: typeof db = db): Promise<void> {
    if (names.length === 0) return
    let query = executor.selectFrom('permissions').select('name').where('name', 'in', names)
    if (executor !== db && store.dialect === 'postgres') query = query.forShare()
    const found = await query.execute()
    const missing = names.filter((n) => !found.some((f) => f.name === n))
    if (missing.length > 0) {
      throw new DeputyError(
        'ERR_INVALID_INPUT',
        `unknown permission${missing.length > 1 ? 's' : ''}: ${missing.join(', ')} (add it first)`,
      )
    }
  }

  const repository = {
    /** Every role with its permissions, by name. */
    async list(): Promise<Role[]> {
      const rows = await db.selectFrom('roles').selectAll().orderBy('name').execute()
      const byRole = await permissionsByRole()
      return rows.map((row) => ({
        name: row.name,
        description: row.description,
        permissions: byRole.get(row.name) ?? [],
        createdAt: new Date(row.created_at).toISOString(),
      }))
    },

    /** One role with its permissions, or undefined. */
    async find(name: string): Promise<Role | undefined> {
      const row = await db
        .selectFrom('roles')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst()
      if (!row) return undefined
      return {
        name: row.name,
        description: row.description,
        permissions: (await permissionsByRole([row.name])).get(row.name) ?? [],
        createdAt: new Date(row.created_at).toISOString(),
      }
    },

    /**
     * Adds a role; its permissions are created if they do not exist yet, so
     * `deputy roles add shop-admin --permission shop:admin` is one step. Refuses a duplicate name.
     */
    async add(input: AddRoleInput, actor: ChangeActor): Promise<Role> {
      const name = parseInput(NameSchema, input.name, 'name')
      const description = parseInput(DescriptionSchema, input.description ?? '', 'description')
      const permissions = parseInput(
        z.array(NameSchema),
        [...new Set(input.permissions ?? [])],
        'permissions',
      )
      const now = clock.now().getTime()
      const createdPermissions: string[] = []
      await db.transaction().execute(async (trx) => {
        // Insert-or-nothing decides a race between two creators atomically on both dialects.
        const inserted = await trx
          .insertInto('roles')
          .values({ name, description, created_at: now })
          .onConflict((oc) => oc.column('name').doNothing())
          .executeTakeFirst()
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0)
          throw new DeputyError('ERR_CONFLICT', `a role named ${name} already exists`)
        for (const permission of permissions) {
          const created = await trx
            .insertInto('permissions')
            .values({ name: permission, description: '', created_at: now })
            .onConflict((oc) => oc.column('name').doNothing())
            .executeTakeFirst()
          if (Number(created.numInsertedOrUpdatedRows ?? 0) > 0) createdPermissions.push(permission)
        }
        if (permissions.length > 0) {
          // An existing permission deleted since the insert-or-nothing above: refused in one line.
          await requirePermissions(permissions, trx)
          await trx
            .insertInto('role_permissions')
            .values(permissions.map((permission) => ({ role: name, permission })))
            .execute()
        }
      })
      for (const permission of createdPermissions) {
        await audit.append({
          type: 'permission.created',
          actor,
          target: { type: 'permission', id: permission },
          data: { name: permission },
        })
      }
      await audit.append({
        type: 'role.created',
        actor,
        target: { type: 'role', id: name },
        data: { name, permissions: [...permissions].sort() },
      })
      return (await repository.find(name)) as Role
    },

    /**
     * Replaces a role's permissions with exactly `permissions`. Unknown permissions are refused
     * rather than created: a typo here would silently grant nothing while looking right.
     */
    async setPermissions(
      roleName: string,
      permissions: string[],
      actor: ChangeActor,
    ): Promise<Role> {
      const name = parseInput(NameSchema, roleName, 'role')
      const names = parseInput(z.array(NameSchema), [...new Set(permissions)], 'permissions')
      await requireRole(name)
      // Without this, one command could leave Deputy with no way in but the database.
      if (name === ADMIN_ROLE && !names.includes(ADMIN_PERMISSION)) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `permissions of the built-in ${ADMIN_ROLE} role must include ${ADMIN_PERMISSION}`,
        )
      }
      await db.transaction().execute(async (trx) => {
        await requirePermissions(names, trx)
        await trx.deleteFrom('role_permissions').where('role', '=', name).execute()
        if (names.length > 0)
          await trx
            .insertInto('role_permissions')
            .values(names.map((permission) => ({ role: name, permission })))
            .execute()
      })
      await audit.append({
        type: 'role.permissions-changed',
        actor,
        target: { type: 'role', id: name },
        data: { name, permissions: [...names].sort() },
      })
      return (await repository.find(name)) as Role
    },

    /** Replaces a role's description. */
    async setDescription(roleName: string, text: string, actor: ChangeActor): Promise<Role> {
      const name = parseInput(NameSchema, roleName, 'role')
      const description = parseInput(DescriptionSchema, text, 'description')
      const updated = await db
        .updateTable('roles')
        .set({ description })
        .where('name', '=', name)
        .executeTakeFirst()
      if (Number(updated.numUpdatedRows) === 0) await requireRole(name)
      await audit.append({
        type: 'role.description-changed',
        actor,
        target: { type: 'role', id: name },
        data: { name },
      })
      return (await repository.find(name)) as Role
    },

    /** How many people hold each role, by role name (roles nobody holds are absent). */
    async holders(): Promise<Map<string, number>> {
      const rows = await db
        .selectFrom('user_roles')
        .select(['role', db.fn.countAll<number | string | bigint>().as('people')])
        .groupBy('role')
        .execute()
      return new Map(rows.map((row) => [row.role, Number(row.people)]))
    },

    /**
     * Deletes a role: the people who held it lose it, and its permissions with it (one
     * transaction). The built-in admin role cannot be deleted: that would leave no way in.
     */
    async remove(roleName: string, actor: ChangeActor): Promise<{ holders: number }> {
      const name = parseInput(NameSchema, roleName, 'role')
      if (name === ADMIN_ROLE)
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `the built-in ${ADMIN_ROLE} role cannot be deleted`,
        )
      const holders = await db.transaction().execute(async (trx) => {
        const held = await trx
          .selectFrom('user_roles')
          .select(trx.fn.countAll<number | string | bigint>().as('people'))
          .where('role', '=', name)
          .executeTakeFirstOrThrow()
        // user_roles and role_permissions rows go with it (ON DELETE CASCADE, migration 0001).
        const deleted = await trx.deleteFrom('roles').where('name', '=', name).executeTakeFirst()
        if (Number(deleted.numDeletedRows) === 0)
          throw new DeputyError('ERR_NOT_FOUND', `unknown role: ${name}`)
        return Number(held.people)
      })
      await audit.append({
        type: 'role.deleted',
        actor,
        target: { type: 'role', id: name },
        data: { name, holders },
      })
      return { holders }
    },

    /** Every permission with the roles that grant it, by name. */
    async listPermissions(): Promise<Permission[]> {
      const rows = await db.selectFrom('permissions').selectAll().orderBy('name').execute()
      const grants = await db
        .selectFrom('role_permissions')
        .select(['role', 'permission'])
        .orderBy('role')
        .execute()
      return rows.map((row) => ({
        name: row.name,
        description: row.description,
        roles: grants.filter((g) => g.permission === row.name).map((g) => g.role),
        createdAt: new Date(row.created_at).toISOString(),
      }))
    },

    /** Adds a permission; refuses a duplicate name. */
    async addPermission(input: AddPermissionInput, actor: ChangeActor): Promise<Permission> {
      const name = parseInput(NameSchema, input.name, 'name')
      const description = parseInput(DescriptionSchema, input.description ?? '', 'description')
      const now = clock.now().getTime()
      const inserted = await db
        .insertInto('permissions')
        .values({ name, description, created_at: now })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst()
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0)
        throw new DeputyError('ERR_CONFLICT', `a permission named ${name} already exists`)
      await audit.append({
        type: 'permission.created',
        actor,
        target: { type: 'permission', id: name },
        data: { name, description },
      })
      return { name, description, roles: [], createdAt: new Date(now).toISOString() }
    },

    /**
     * Deletes a permission no role grants. One granted is refused rather than taken from its
     * roles: the operator sees which roles would change and changes them first. deputy:admin
     * cannot be deleted (the built-in admin role always grants it).
     */
    async removePermission(permissionName: string, actor: ChangeActor): Promise<void> {
      const name = parseInput(NameSchema, permissionName, 'permission')
      if (name === ADMIN_PERMISSION)
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `the permission ${ADMIN_PERMISSION} cannot be deleted`,
        )
      // The permission's row is locked first (PostgreSQL; SQLite's writer lock serialises), so
      // a role granting it at the same moment either committed before — and the check below
      // sees the grant — or waits and then finds it gone: never a grant lost to the cascade.
      await db.transaction().execute(async (trx) => {
        let row = trx.selectFrom('permissions').select('name').where('name', '=', name)
        if (store.dialect === 'postgres') row = row.forUpdate()
        if (!(await row.executeTakeFirst()))
          throw new DeputyError('ERR_NOT_FOUND', `unknown permission: ${name}`)
        const grants = await trx
          .selectFrom('role_permissions')
          .select('role')
          .where('permission', '=', name)
          .orderBy('role')
          .execute()
        if (grants.length > 0)
          throw new DeputyError(
            'ERR_CONFLICT',
            `the permission ${name} is granted by ${grants.map((g) => g.role).join(', ')}: take it from ${grants.length > 1 ? 'those roles' : 'that role'} first`,
          )
        await trx.deleteFrom('permissions').where('name', '=', name).execute()
      })
      await audit.append({
        type: 'permission.deleted',
        actor,
        target: { type: 'permission', id: name },
        data: { name },
      })
    },
  }
  return repository
}

export type Roles = ReturnType<typeof createRoles>
