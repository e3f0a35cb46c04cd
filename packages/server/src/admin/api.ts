import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { z } from 'zod'
import type { Actor } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import { errorResponse } from '../http/errors.js'
import { MIN_PASSWORD_LENGTH } from '../identity/passwords.js'
import { DescriptionSchema, type Roles } from '../identity/roles.js'
import {
  ClaimsSchema,
  EmailSchema,
  NameOfPersonSchema,
  NameSchema,
  type User,
  type Users,
} from '../identity/users.js'
import { DeputyError } from '../lib/errors.js'
import type { AdminEnv } from './auth.js'
import { type AdminRoute, openApiDocument } from './openapi.js'
import {
  PermissionWire,
  permissionToWire,
  RoleWire,
  roleToWire,
  UserWire,
  userToWire,
} from './wire.js'

/** Version of the admin API's contract (not of the package). */
const ADMIN_API_VERSION = '1.0.0'

// Our own API rejects unknown fields: a misspelt `stauts` must not be silently ignored.
const CreateUserBody = z.strictObject({
  email: EmailSchema,
  name: NameOfPersonSchema,
  password: z
    .string()
    .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
    .optional(),
  roles: z.array(NameSchema).optional(),
  claims: ClaimsSchema.optional(),
})
const UpdateUserBody = z
  .strictObject({
    name: NameOfPersonSchema.optional(),
    status: z.enum(['active', 'disabled']).optional(),
  })
  .refine((body) => body.name !== undefined || body.status !== undefined, {
    message: 'must set name or status',
  })
const SetRolesBody = z.strictObject({ roles: z.array(NameSchema) })
const SetClaimsBody = z.strictObject({ claims: ClaimsSchema })
const CreateRoleBody = z.strictObject({
  name: NameSchema,
  description: DescriptionSchema.optional(),
  permissions: z
    .array(NameSchema)
    .optional()
    .describe('Granted to the role; permissions not yet known are created.'),
})
const SetPermissionsBody = z.strictObject({
  permissions: z.array(NameSchema).describe('Every permission must exist already.'),
})
const UpdateRoleBody = z.strictObject({ description: DescriptionSchema })
const CreatePermissionBody = z.strictObject({
  name: NameSchema,
  description: DescriptionSchema.optional(),
})

interface Call<B> {
  params: Record<string, string>
  body: B
  actor: Actor
}

interface HandledRoute<B> extends AdminRoute {
  body?: z.ZodType<B>
  handle(call: Call<B>): Promise<unknown>
}

function route<B = undefined>(spec: HandledRoute<B>): HandledRoute<unknown> {
  return spec as HandledRoute<unknown>
}

/** What the users, roles and permissions API uses. */
export interface AdminApiDeps {
  users: Users
  roles: Roles
  /** The admin gate (admin/auth.ts `requireAdmin`): an admin API key or an administrator's session. */
  adminGate: MiddlewareHandler<AdminEnv>
  /**
   * Routes mounted by other modules on /admin/api (the policy API), described in the same OpenAPI
   * document so one document covers the whole admin API.
   */
  describedElsewhere: readonly AdminRoute[]
}

/**
 * The admin API (/admin/api): users, roles and permissions as JSON, for an admin API key or a
 * signed-in administrator. Every change is an audit event naming the key or person.
 */
export function createAdminApi(deps: AdminApiDeps): Hono<AppEnv> {
  const { roles, users } = deps

  async function userById(id: string): Promise<User> {
    const user = await users.findById(id)
    if (!user) throw new DeputyError('ERR_NOT_FOUND', `no user with id ${id}`)
    return user
  }

  const routes: HandledRoute<unknown>[] = [
    route({
      method: 'get',
      path: '/users',
      summary: 'List users',
      response: z.object({ users: z.array(UserWire) }),
      handle: async () => ({ users: (await users.list()).map(userToWire) }),
    }),
    route({
      method: 'post',
      path: '/users',
      summary: 'Create a user',
      body: CreateUserBody,
      response: UserWire,
      status: 201,
      errors: [400, 409],
      handle: async ({ body, actor }) => userToWire(await users.create(body, actor)),
    }),
    route({
      method: 'get',
      path: '/users/:id',
      summary: 'Get a user',
      response: UserWire,
      errors: [404],
      handle: async ({ params }) => userToWire(await userById(params.id as string)),
    }),
    route({
      method: 'patch',
      path: '/users/:id',
      summary: "Change a user's name or status (a disabled user cannot sign in)",
      body: UpdateUserBody,
      response: UserWire,
      errors: [400, 404],
      handle: async ({ params, body, actor }) => {
        let user = await userById(params.id as string)
        if (body.name !== undefined) user = await users.setName(user.email, body.name, actor)
        if (body.status !== undefined && body.status !== user.status)
          user = await users.setStatus(user.email, body.status, actor)
        return userToWire(user)
      },
    }),
    route({
      method: 'put',
      path: '/users/:id/roles',
      summary: "Replace a user's roles",
      body: SetRolesBody,
      response: UserWire,
      errors: [400, 404],
      handle: async ({ params, body, actor }) => {
        const user = await userById(params.id as string)
        return userToWire(await users.setRoles(user.email, body.roles, actor))
      },
    }),
    route({
      method: 'put',
      path: '/users/:id/claims',
      summary: "Replace a user's custom profile claims",
      body: SetClaimsBody,
      response: UserWire,
      errors: [400, 404],
      handle: async ({ params, body, actor }) => {
        const user = await userById(params.id as string)
        return userToWire(await users.setClaims(user.email, body.claims, actor))
      },
    }),
    route({
      method: 'get',
      path: '/roles',
      summary: 'List roles with their permissions',
      response: z.object({ roles: z.array(RoleWire) }),
      handle: async () => ({ roles: (await roles.list()).map(roleToWire) }),
    }),
    route({
      method: 'post',
      path: '/roles',
      summary: 'Create a role',
      body: CreateRoleBody,
      response: RoleWire,
      status: 201,
      errors: [400, 409],
      handle: async ({ body, actor }) => roleToWire(await roles.add(body, actor)),
    }),
    route({
      method: 'put',
      path: '/roles/:name/permissions',
      summary: "Replace a role's permissions",
      body: SetPermissionsBody,
      response: RoleWire,
      errors: [400, 404],
      handle: async ({ params, body, actor }) =>
        roleToWire(await roles.setPermissions(params.name as string, body.permissions, actor)),
    }),
    route({
      method: 'patch',
      path: '/roles/:name',
      summary: "Change a role's description",
      body: UpdateRoleBody,
      response: RoleWire,
      errors: [400, 404],
      handle: async ({ params, body, actor }) =>
        roleToWire(await roles.setDescription(params.name as string, body.description, actor)),
    }),
    route({
      method: 'delete',
      path: '/roles/:name',
      summary: 'Delete a role; the people who hold it lose it (not the built-in admin role)',
      response: z.null(),
      noContent: true,
      errors: [400, 404],
      handle: async ({ params, actor }) => {
        await roles.remove(params.name as string, actor)
        return null
      },
    }),
    route({
      method: 'get',
      path: '/permissions',
      summary: 'List permissions with the roles that grant them',
      response: z.object({ permissions: z.array(PermissionWire) }),
      handle: async () => ({ permissions: (await roles.listPermissions()).map(permissionToWire) }),
    }),
    route({
      method: 'post',
      path: '/permissions',
      summary: 'Create a permission',
      body: CreatePermissionBody,
      response: PermissionWire,
      status: 201,
      errors: [400, 409],
      handle: async ({ body, actor }) => permissionToWire(await roles.addPermission(body, actor)),
    }),
    route({
      method: 'delete',
      path: '/permissions/:name',
      summary: 'Delete a permission no role grants (not deputy:admin)',
      response: z.null(),
      noContent: true,
      errors: [400, 404, 409],
      handle: async ({ params, actor }) => {
        await roles.removePermission(params.name as string, actor)
        return null
      },
    }),
  ]

  const describedRoutes: AdminRoute[] = [
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This description of the admin API',
      response: z.object({ openapi: z.string() }).loose(),
      public: true,
    },
    ...routes,
  ]
  const document = openApiDocument(
    [...describedRoutes, ...deps.describedElsewhere],
    ADMIN_API_VERSION,
  )

  const app = new Hono<AdminEnv>()
  // Set here as well as on the main app so the admin API answers the same when mounted alone.
  app.onError((err, c) => errorResponse(err, c as unknown as Context<AppEnv>))
  // The description holds no data, and tools read it before they have a key.
  app.get('/openapi.json', (c) => c.json(document))
  app.use('*', deps.adminGate)
  for (const r of routes) {
    app.on(r.method.toUpperCase(), r.path, async (c) => {
      const body = r.body ? await readBody(c, r.body) : undefined
      const result = await r.handle({ params: c.req.param(), body, actor: c.get('actor') })
      if (r.noContent) return c.body(null, 204, { 'Cache-Control': 'no-store' })
      return c.json(result as object, r.status ?? 200, { 'Cache-Control': 'no-store' })
    })
  }
  return app as unknown as Hono<AppEnv>
}

async function readBody<B>(c: Context<AdminEnv>, schema: z.ZodType<B>): Promise<B> {
  let raw: unknown
  try {
    raw = await c.req.json()
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', 'the request body must be a JSON object')
  }
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  throw new DeputyError('ERR_INVALID_INPUT', describeIssue(result.error.issues[0]))
}

/** One line naming the field at fault, e.g. `email is not a valid email address`. */
export function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'the request body is invalid'
  const field = issue.path.map(String).join('.')
  if (issue.code === 'unrecognized_keys')
    return `${[field, issue.keys[0]].filter(Boolean).join('.')} is not a known field`
  if (!field) {
    return issue.code === 'invalid_type'
      ? 'the request body must be a JSON object'
      : `the request body ${issue.message}`
  }
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message))
    return `${field} is required`
  const message = issue.message
  return /^[a-z"]/.test(message)
    ? `${field} ${message}`
    : `${field}: ${message.charAt(0).toLowerCase()}${message.slice(1)}`
}
