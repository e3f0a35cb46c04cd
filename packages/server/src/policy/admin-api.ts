import type { Hono, MiddlewareHandler } from 'hono'
import type { AdminEnv } from '../admin/auth.js'
import { mountAdminRoutes } from '../admin/route-records.js'
import type { AppEnv } from '../http/env.js'
import type { PolicyRouteDeps } from './admin-route-record.js'
import { POLICY_ADMIN_ROUTES } from './admin-routes.js'
import { policyErrorToWire } from './admin-wire.js'

/**
 * The admin API for policies, decisions and relationship tuples (mounted at /admin/api beside the
 * users API), every change an audit event naming the administrator. The routes are described in
 * admin-routes.ts.
 */
export function createPolicyAdminApi(
  deps: PolicyRouteDeps & {
    /** The admin gate (admin/auth.ts `requireAdmin`). */
    adminGate: MiddlewareHandler<AdminEnv>
  },
): Hono<AppEnv> {
  return mountAdminRoutes(POLICY_ADMIN_ROUTES, {
    deps,
    adminGate: deps.adminGate,
    guarded: ['/policies', '/policies/*', '/policy/*', '/relations', '/relations/*'],
    // The policy store's problems are camelCase in code; the wire is snake_case (policy_id).
    errorToWire: policyErrorToWire,
  })
}
