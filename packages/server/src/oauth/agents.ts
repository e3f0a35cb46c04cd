import { Hono } from 'hono'
import type { DeputyDeps } from '../deputy.js'
import type { AppEnv } from '../http/env.js'

// PLACEHOLDER: being written now (issue 3); replaced before anything is claimed.
export function createAgentsRoutes(_deps: DeputyDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
}
