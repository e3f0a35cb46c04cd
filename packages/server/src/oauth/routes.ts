import { Hono } from 'hono'
import type { DeputyDeps } from '../deputy.js'
import type { AppEnv } from '../http/env.js'
import { createAgentsRoutes } from './agents.js'
import { createAuthorizeRoutes } from './authorize.js'
import { createIntrospectionRoutes } from './introspect.js'
import { createMetadataRoutes } from './metadata.js'
import { createRegistrationRoutes } from './register.js'
import { createRevocationRoutes } from './revoke.js'
import { createTokenRoutes } from './token.js'
import { createUserinfoRoutes } from './userinfo.js'

/** The authorization server's endpoints, one module each. */
export function createOAuthRoutes(deps: DeputyDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.route('/', createMetadataRoutes(deps))
  app.route('/', createRegistrationRoutes(deps))
  app.route('/', createAuthorizeRoutes(deps))
  app.route('/', createAgentsRoutes(deps))
  app.route('/', createTokenRoutes(deps))
  app.route('/', createRevocationRoutes(deps))
  app.route('/', createIntrospectionRoutes(deps))
  app.route('/', createUserinfoRoutes(deps))
  return app
}
