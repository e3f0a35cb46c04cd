import { DECISION_ROUTES } from './admin-decision-routes.js'
import { POLICY_ROUTES } from './admin-policy-routes.js'
import { RELATION_ROUTES } from './admin-relation-routes.js'
import type { PolicyAdminRoute } from './admin-route-record.js'

// The policy and relationship routes of the admin API, described once: the same records mount
// them (admin-api.ts) and document them (admin/openapi.ts, given them by the composition root).
// Each group lives with its request bodies; the wire shapes (admin-wire.ts) and the request
// building (decision-query.ts) are shared with `deputy policy|relations … --json`.

/** Every policy and relationship route of the admin API (paths relative to /admin/api). */
export const POLICY_ADMIN_ROUTES: readonly PolicyAdminRoute<unknown>[] = [
  ...POLICY_ROUTES,
  ...DECISION_ROUTES,
  ...RELATION_ROUTES,
]
