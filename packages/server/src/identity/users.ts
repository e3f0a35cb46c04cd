import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import { jsonValueProblem } from '../lib/json-input.js'
import type { Store } from '../store/db.js'
import { reusedStatement } from '../store/reused-statement.js'
import type { UserRow, UserStatus } from '../store/schema.js'
import { hashPassword, MIN_PASSWORD_LENGTH } from './passwords.js'

/** A person as the rest of Deputy sees them: profile, roles, effective permissions, custom claims. */
export interface User {
  id: string
  email: string
  name: string
  status: UserStatus
  roles: string[]
  /** Union of the permissions of the user's roles. */
  permissions: string[]
  /** Custom profile claims (e.g. `favorite_song`). */
  claims: Record<string, unknown>
  createdAt: string
  updatedAt: string
}

export const EmailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email({ message: 'is not a valid email address' }))

/** Role and permission names: `shop-admin`, `shop:admin`, `deputy:admin`. */
export const NameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/, {
  message: 'must be 1–64 letters, digits or : . _ - and start with a letter or digit',
})

/** A person's display name. */
export const NameOfPersonSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')

/** Claims that are Deputy's own and cannot be set as custom claims. */
const RESERVED_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'scope',
  'client_id',
  'azp',
  'act',
  'cnf',
  'email',
  'name',
  'roles',
  'permissions',
  'auth_time',
  'nonce',
  'acr',
  'amr',
  'sid',
])

export const ClaimsSchema = z
  .record(z.string().min(1).max(64), z.unknown())
  .superRefine((claims, ctx) => {
    for (const key of Object.keys(claims)) {
      if (RESERVED_CLAIMS.has(key))
        ctx.addIssue({ code: 'custom', message: `"${key}" is a reserved claim and cannot be set` })
    }
    // Before anything walks them: 5,000 levels overflow JSON.stringify's stack (a 500).
    const problem = jsonValueProblem(claims)
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `claims ${problem}` })
      return
    }
    if (JSON.stringify(claims).length > 8 * 1024)
      ctx.addIssue({ code: 'custom', message: 'claims must be at most 8 KiB of JSON' })
  })

export interface UsersDeps {
  store: Store
  clock: Clock
  audit: AuditLog
}

export interface CreateUserInput {
  email: string
  name: string
  password?: string
  roles?: string[]
  claims?: Record<string, unknown>
  /** The upstream provider whose sign-in created this person just in time, named in the audit. */
  provider?: string
}

/** Who asked for a change, for the audit chain. */
export type ChangeActor = Actor

/** Validates input with a schema and turns the first problem into a message naming the field. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const path = issue?.path.length ? `${field}.${issue.path.join('.')}` : field
    throw new DeputyError('ERR_INVALID_INPUT', `${path} ${issue?.message ?? 'is invalid'}`)
  }
  return result.data
}

/** The users repository: every change is one transaction and one audit event. */
export function createUsers(deps: UsersDeps) {
  const { store, clock, audit } = deps
  const db = store.db

  const rolesOf = (ids: string[]) =>
    db
      .selectFrom('user_roles')
      .leftJoin('role_permissions', 'role_permissions.role', 'user_roles.role')
      .select(['user_roles.user_id', 'user_roles.role', 'role_permissions.permission'])
      .where('user_roles.user_id', 'in', ids)
      .compile()
  // One person's (the shape every session and token request reads), compiled once; a list of
  // several is compiled for its length.
  const rolesOfOne = reusedStatement(
    (id: string) => rolesOf([id]),
    (id) => [id],
  )
  const selectUser = reusedStatement(
    (id: string) => db.selectFrom('users').selectAll().where('id', '=', id).compile(),
    (id) => [id],
  )

  async function load(rows: UserRow[]): Promise<User[]> {
    if (rows.length === 0) return []
    const ids = rows.map((r) => r.id)
    const [only] = ids
    const grants = (
      await db.executeQuery(
        ids.length === 1 && only !== undefined ? rolesOfOne(only) : rolesOf(ids),
      )
    ).rows
    return rows.map((row) => {
      const mine = grants.filter((g) => g.user_id === row.id)
      return {
        id: row.id,
        email: row.email,
        name: row.name,
        status: row.status,
        roles: [...new Set(mine.map((g) => g.role))].sort(),
        permissions: [
          ...new Set(mine.map((g) => g.permission).filter((p): p is string => !!p)),
        ].sort(),
        claims: JSON.parse(row.claims) as Record<string, unknown>,
        createdAt: new Date(row.created_at).toISOString(),
        updatedAt: new Date(row.updated_at).toISOString(),
      }
    })
  }

  async function requireRow(email: string): Promise<UserRow> {
    const normalized = parseInput(EmailSchema, email, 'email')
    const row = await db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', normalized)
      .executeTakeFirst()
    if (!row) throw new DeputyError('ERR_NOT_FOUND', `no user with email ${normalized}`)
    return row
  }

  async function requireRoles(roles: string[]): Promise<void> {
    if (roles.length === 0) return
    const found = await db.selectFrom('roles').select('name').where('name', 'in', roles).execute()
    const missing = roles.filter((r) => !found.some((f) => f.name === r))
    // The user being changed exists; what is wrong is the input, hence a 400 rather than a 404.
    if (missing.length > 0) {
      throw new DeputyError(
        'ERR_INVALID_INPUT',
        `unknown role${missing.length > 1 ? 's' : ''}: ${missing.join(', ')} (create it with \`deputy roles add\`)`,
      )
    }
  }

  return {
    /** Finds a user by email (case-insensitive), or undefined. */
    async findByEmail(email: string): Promise<User | undefined> {
      const parsed = EmailSchema.safeParse(email)
      if (!parsed.success) return undefined
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('email', '=', parsed.data)
        .executeTakeFirst()
      return row ? (await load([row]))[0] : undefined
    },

    /** Finds a user by id, or undefined. */
    async findById(id: string): Promise<User | undefined> {
      const [row] = (await db.executeQuery(selectUser(id))).rows
      return row ? (await load([row]))[0] : undefined
    },

    /** The stored password hash, for sign-in only. */
    async passwordHashOf(userId: string): Promise<string | null> {
      const row = await db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', userId)
        .executeTakeFirst()
      return row?.password_hash ?? null
    },

    async list(): Promise<User[]> {
      return load(await db.selectFrom('users').selectAll().orderBy('email').execute())
    },

    /** Creates a user; refuses a duplicate email, an unknown role, a short password. */
    async create(input: CreateUserInput, actor: ChangeActor): Promise<User> {
      const email = parseInput(EmailSchema, input.email, 'email')
      const name = parseInput(NameOfPersonSchema, input.name, 'name')
      const roles = parseInput(z.array(NameSchema), input.roles ?? [], 'roles')
      const claims = parseInput(ClaimsSchema, input.claims ?? {}, 'claims')
      if (input.password !== undefined && input.password.length < MIN_PASSWORD_LENGTH) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
        )
      }
      await requireRoles(roles)
      const passwordHash = input.password === undefined ? null : await hashPassword(input.password)
      const now = clock.now().getTime()
      const id = randomUUID()
      const conflict = () =>
        new DeputyError('ERR_CONFLICT', `a user with email ${email} already exists`)
      await db
        .transaction()
        .execute(async (trx) => {
          const existing = await trx
            .selectFrom('users')
            .select('id')
            .where('email', '=', email)
            .executeTakeFirst()
          if (existing) throw conflict()
          await trx
            .insertInto('users')
            .values({
              id,
              email,
              name,
              status: 'active',
              password_hash: passwordHash,
              claims: JSON.stringify(claims),
              created_at: now,
              updated_at: now,
            })
            .execute()
          if (roles.length > 0)
            await trx
              .insertInto('user_roles')
              .values(roles.map((role) => ({ user_id: id, role })))
              .execute()
        })
        // Two creators racing past the check above meet the unique index; the loser gets a 409.
        .catch((err: unknown) => {
          throw isUniqueViolation(err) ? conflict() : err
        })
      await audit.append({
        type: 'user.created',
        actor,
        target: { type: 'user', id },
        data: { email, roles, ...(input.provider !== undefined && { provider: input.provider }) },
      })
      return (await this.findById(id)) as User
    },

    /** Renames a user. */
    async setName(email: string, name: string, actor: ChangeActor): Promise<User> {
      const row = await requireRow(email)
      const parsed = parseInput(NameOfPersonSchema, name, 'name')
      await db
        .updateTable('users')
        .set({ name: parsed, updated_at: clock.now().getTime() })
        .where('id', '=', row.id)
        .execute()
      await audit.append({
        type: 'user.renamed',
        actor,
        target: { type: 'user', id: row.id },
        data: { email: row.email },
      })
      return (await this.findById(row.id)) as User
    },

    /** Sets a user's status; a disabled user cannot sign in and their sessions end. */
    async setStatus(email: string, status: UserStatus, actor: ChangeActor): Promise<User> {
      const row = await requireRow(email)
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('users')
          .set({ status, updated_at: clock.now().getTime() })
          .where('id', '=', row.id)
          .execute()
        if (status === 'disabled')
          await trx.deleteFrom('sessions').where('user_id', '=', row.id).execute()
      })
      await audit.append({
        type: status === 'disabled' ? 'user.disabled' : 'user.enabled',
        actor,
        target: { type: 'user', id: row.id },
        data: { email: row.email },
      })
      return (await this.findById(row.id)) as User
    },

    /** Replaces a user's roles with exactly `roles`. */
    async setRoles(email: string, roles: string[], actor: ChangeActor): Promise<User> {
      const row = await requireRow(email)
      const names = parseInput(z.array(NameSchema), [...new Set(roles)], 'roles')
      await requireRoles(names)
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('user_roles').where('user_id', '=', row.id).execute()
        if (names.length > 0)
          await trx
            .insertInto('user_roles')
            .values(names.map((role) => ({ user_id: row.id, role })))
            .execute()
        await trx
          .updateTable('users')
          .set({ updated_at: clock.now().getTime() })
          .where('id', '=', row.id)
          .execute()
      })
      await audit.append({
        type: 'user.roles-changed',
        actor,
        target: { type: 'user', id: row.id },
        data: { email: row.email, roles: names },
      })
      return (await this.findById(row.id)) as User
    },

    /** Replaces a user's custom claims with `claims` (a JSON object). */
    async setClaims(email: string, claims: unknown, actor: ChangeActor): Promise<User> {
      const row = await requireRow(email)
      const parsed = parseInput(ClaimsSchema, claims, 'claims')
      await db
        .updateTable('users')
        .set({ claims: JSON.stringify(parsed), updated_at: clock.now().getTime() })
        .where('id', '=', row.id)
        .execute()
      // Claim values can be personal; the audit event names which claims changed, not their values.
      await audit.append({
        type: 'user.claims-changed',
        actor,
        target: { type: 'user', id: row.id },
        data: { email: row.email, claims: Object.keys(parsed).sort() },
      })
      return (await this.findById(row.id)) as User
    },

    /**
     * Sets a new password and ends the person's sessions: all of them, or all but `keepSession`
     * (the SHA-256 of a session id) when the person changes it themselves from that session.
     */
    async setPassword(
      email: string,
      password: string,
      actor: ChangeActor,
      options: { keepSession?: string } = {},
    ): Promise<void> {
      const row = await requireRow(email)
      if (password.length < MIN_PASSWORD_LENGTH) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
        )
      }
      const passwordHash = await hashPassword(password)
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('users')
          .set({ password_hash: passwordHash, updated_at: clock.now().getTime() })
          .where('id', '=', row.id)
          .execute()
        // A new password ends every existing session (but the one it was changed from).
        let sessions = trx.deleteFrom('sessions').where('user_id', '=', row.id)
        if (options.keepSession) sessions = sessions.where('id_hash', '!=', options.keepSession)
        await sessions.execute()
      })
      await audit.append({
        type: 'user.password-changed',
        actor,
        target: { type: 'user', id: row.id },
        data: { email: row.email },
      })
    },
  }
}

export type Users = ReturnType<typeof createUsers>

/** True for a unique-constraint violation, in either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  // PostgreSQL unique_violation; better-sqlite3's constraint code.
  return (
    code === '23505' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  )
}
