import { Hono } from 'hono'
import type { DeputyDeps } from '../deputy.js'
import type { AppEnv } from '../http/env.js'

// PLACEHOLDER for the login/logout work in progress (issue 2 §5); replaced before the issue closes.
export function createIdentityRoutes(_deps: DeputyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
}
