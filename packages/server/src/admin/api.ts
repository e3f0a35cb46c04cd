import { Hono } from 'hono'
import type { DeputyDeps } from '../deputy.js'
import type { AppEnv } from '../http/env.js'

// PLACEHOLDER for the admin API work in progress (issue 2 §9); replaced before the issue closes.
export function createAdminApi(_deps: DeputyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
}
