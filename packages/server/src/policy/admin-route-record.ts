import { type AdminCall, type AdminRouteRecord, routeRecords } from '../admin/route-records.js'
import type { Users } from '../identity/users.js'
import type { Policies, PolicyEngine, Relationships } from './types.js'

// The policy admin API's routes are records (admin/route-records.ts); admin-api.ts mounts them.

/** What the policy routes use: the policy store, the decision point, tuples and people. */
export interface PolicyRouteDeps {
  policies: Policies
  policy: PolicyEngine
  relationships: Relationships
  users: Pick<Users, 'findById' | 'findByEmail'>
}

/** What a handler is given. */
export type PolicyCall<B> = AdminCall<PolicyRouteDeps, B>

/** A route record: its description (for openapi.json) and its handler. */
export type PolicyAdminRoute<B = unknown> = AdminRouteRecord<PolicyRouteDeps, B>

/** A route record, typed by its body while it is written. */
export const route = routeRecords<PolicyRouteDeps>()

/** The most items one request may carry (tuples to write, actions to declare). */
export const MAX_BATCH = 1000
