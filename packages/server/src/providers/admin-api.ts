import type { Hono, MiddlewareHandler } from 'hono'
import type { AdminEnv } from '../admin/auth.js'
import { mountAdminRoutes } from '../admin/route-records.js'
import type { AppEnv } from '../http/env.js'
import { PROVIDER_ADMIN_ROUTES, type ProviderRouteDeps } from './admin-routes.js'

/**
 * The admin API for upstream providers (/admin/api/providers, beside the users API), every change
 * an audit event naming the administrator. The routes are described in admin-routes.ts.
 */
export function createProviderAdminApi(
  deps: ProviderRouteDeps & {
    /** The admin gate (admin/auth.ts `requireAdmin`). */
    adminGate: MiddlewareHandler<AdminEnv>
  },
): Hono<AppEnv> {
  return mountAdminRoutes(PROVIDER_ADMIN_ROUTES, {
    deps,
    adminGate: deps.adminGate,
    guarded: ['/providers', '/providers/*'],
  })
}
