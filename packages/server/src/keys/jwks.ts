import { Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { SigningKeys } from './types.js'

/** The JSON Web Key Set resource servers verify tokens with; readable from any origin. */
export function jwksRoutes(deps: { signingKeys: Pick<SigningKeys, 'jwks'> }): Hono<AppEnv> {
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
