import type { Hono, MiddlewareHandler } from 'hono'
import type { AdminEnv } from '../admin/auth.js'
import { mountAdminRoutes } from '../admin/route-records.js'
import type { AppEnv } from '../http/env.js'
import { APPROVAL_ADMIN_ROUTES, type ApprovalRouteDeps } from './admin-routes.js'

/**
 * The admin API for approval requests and authorization detail types (mounted at /admin/api
 * beside the users API), every change an audit event naming the administrator. The routes are
 * described in admin-routes.ts.
 */
export function createApprovalAdminApi(
  deps: ApprovalRouteDeps & {
    /** The admin gate (admin/auth.ts `requireAdmin`). */
    adminGate: MiddlewareHandler<AdminEnv>
  },
): Hono<AppEnv> {
  return mountAdminRoutes(APPROVAL_ADMIN_ROUTES, {
    deps,
    adminGate: deps.adminGate,
    guarded: ['/approvals', '/approvals/*', '/resources/*'],
  })
}
