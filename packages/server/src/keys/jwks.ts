import { Hono } from 'hono'
import type { DeputyDeps } from '../deputy.js'
import type { AppEnv } from '../http/env.js'

/** The JSON Web Key Set resource servers verify tokens with; readable from any origin. */
export function jwksRoutes(deps: Pick<DeputyDeps, 'signingKeys'>): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.get('/jwks', async () => {
    const jwks = await deps.signingKeys.jwks()
    return new Response(JSON.stringify(jwks), {
      headers: {
        'Access-Control-Allow-Origin': '*',
        'Cache-Control': 'public, max-age=60',
        'Content-Type': 'application/jwk-set+json',
      },
    })
  })
  return app
}
