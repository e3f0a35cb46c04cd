import { z } from 'zod'
import type { Permission, Role } from '../identity/roles.js'
import type { User } from '../identity/users.js'
import type { AdminApiKey } from './api-keys.js'

// The shapes Deputy sends (admin API and `deputy … --json`): snake_case on the wire, camelCase in
// code. The zod schemas are what openapi.json documents; the mappers are what is actually sent.

export const UserWire = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    status: z.enum(['active', 'disabled']),
    roles: z.array(z.string()),
    permissions: z.array(z.string()).describe("Union of the permissions of the user's roles."),
    claims: z.record(z.string(), z.unknown()).describe('Custom profile claims.'),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .describe('User')

export const RoleWire = z
  .object({
    name: z.string(),
    description: z.string(),
    permissions: z.array(z.string()),
    created_at: z.string(),
  })
  .describe('Role')

export const PermissionWire = z
  .object({
    name: z.string(),
    description: z.string(),
    roles: z.array(z.string()).describe('The roles that grant this permission.'),
    created_at: z.string(),
  })
  .describe('Permission')

export const AdminApiKeyWire = z.object({
  id: z.string(),
  name: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
})

export const ErrorWire = z
  .object({
    error: z.string().describe('Stable code, e.g. ERR_INVALID_INPUT.'),
    message: z.string().describe('One line for a person, naming the field or thing at fault.'),
    request_id: z.string().optional(),
  })
  .describe('Error')

/** A user as sent. */
export function userToWire(user: User): z.infer<typeof UserWire> {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    status: user.status,
    roles: user.roles,
    permissions: user.permissions,
    claims: user.claims,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
  }
}

/** A role as sent. */
export function roleToWire(role: Role): z.infer<typeof RoleWire> {
  return {
    name: role.name,
    description: role.description,
    permissions: role.permissions,
    created_at: role.createdAt,
  }
}

/** A permission as sent. */
export function permissionToWire(permission: Permission): z.infer<typeof PermissionWire> {
  return {
    name: permission.name,
    description: permission.description,
    roles: permission.roles,
    created_at: permission.createdAt,
  }
}

/** An admin API key as sent (never the secret; creation adds it once). */
export function adminApiKeyToWire(key: AdminApiKey): z.infer<typeof AdminApiKeyWire> {
  return {
    id: key.id,
    name: key.name,
    created_at: key.createdAt,
    last_used_at: key.lastUsedAt,
    revoked_at: key.revokedAt,
  }
}

/** Where a policy text is wrong: the `problems` of an `ERR_POLICY_INVALID` answer. */
export const PolicyProblemWire = z
  .object({
    policy_id: z.string().optional(),
    line: z.number().describe('1-based line in the text sent.'),
    column: z.number().describe('1-based column in the text sent.'),
    message: z.string(),
    help: z.string().optional().describe("Cedar's hint, e.g. did you mean `now`?"),
  })
  .describe('PolicyProblem')
