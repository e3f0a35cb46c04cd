import type { z } from 'zod'
import type { AdminRoute } from '../admin/openapi.js'
import type { Actor } from '../audit/types.js'
import type { Users } from '../identity/users.js'
import type { Policies, PolicyEngine, Relationships } from './types.js'

// What one route of the policy admin API is: a record with its description (for openapi.json)
// and a handler that takes `deps` as an argument, so the records are plain data the OpenAPI
// description can import without a running Deputy. admin-api.ts mounts them.

/** What the policy routes use: the policy store, the decision point, tuples and people. */
export interface PolicyRouteDeps {
  policies: Policies
  policy: PolicyEngine
  relationships: Relationships
  users: Pick<Users, 'findById' | 'findByEmail'>
}

/** What a handler is given. */
export interface PolicyCall<B> {
  deps: PolicyRouteDeps
  params: Record<string, string>
  /** The query parameters, checked against the route's `query` schema. */
  query: Record<string, string | undefined>
  body: B
  actor: Actor
  requestId: string | undefined
}

/** A route record: its description (for openapi.json) and its handler. */
export interface PolicyAdminRoute<B = unknown> extends AdminRoute {
  body?: z.ZodType<B>
  /** Resolves to the JSON answer, or undefined for 204. */
  handle(call: PolicyCall<B>): Promise<unknown>
}

/** A route record, typed by its body while it is written. */
export function route<B = undefined>(spec: PolicyAdminRoute<B>): PolicyAdminRoute<unknown> {
  return spec as PolicyAdminRoute<unknown>
}

/** The most items one request may carry (tuples to write, actions to declare). */
export const MAX_BATCH = 1000
