import { type Context, Hono, type MiddlewareHandler } from 'hono'
import type { z } from 'zod'
import { describeIssue } from '../admin/api.js'
import type { AdminEnv } from '../admin/auth.js'
import type { AppEnv } from '../http/env.js'
import { errorResponse } from '../http/errors.js'
import { DeputyError } from '../lib/errors.js'
import { PROVIDER_ADMIN_ROUTES } from './admin-routes.js'
import type { Providers } from './types.js'

const noStore = { 'Cache-Control': 'no-store' }

/**
 * The admin API for upstream providers (/admin/api/providers, beside the users API): the same
 * admin API key or signed-in administrator, every change an audit event naming them. The routes
 * are described in admin-routes.ts.
 */
export function createProviderAdminApi(deps: {
  providers: Providers
  /** The admin gate (admin/auth.ts `requireAdmin`). */
  adminGate: MiddlewareHandler<AdminEnv>
}): Hono<AppEnv> {
  const app = new Hono<AdminEnv>()
  app.onError((err, c) => errorResponse(err, c as unknown as Context<AppEnv>))
  const gate = deps.adminGate
  // Mounted on the same prefix as the users API, whose gate may already have run for this request.
  const auth: MiddlewareHandler<AdminEnv> = (c, next) => (c.get('actor') ? next() : gate(c, next))
  for (const path of ['/providers', '/providers/*']) app.use(path, auth)

  for (const r of PROVIDER_ADMIN_ROUTES) {
    app.on(r.method.toUpperCase(), r.path, async (c) => {
      const body = r.body ? parse(r.body, await readJson(c)) : undefined
      const result = await r.handle({
        deps,
        params: c.req.param() as Record<string, string>,
        body,
        actor: c.get('actor'),
      })
      if (r.noContent) return c.body(null, 204, noStore)
      return c.json(result as object, r.status ?? 200, noStore)
    })
  }
  return app as unknown as Hono<AppEnv>
}

async function readJson(c: Context<AdminEnv>): Promise<unknown> {
  try {
    return await c.req.json()
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', 'the request body must be a JSON object')
  }
}

/** Checks a body against a route's schema; one line naming the field at fault otherwise. */
function parse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  throw new DeputyError('ERR_INVALID_INPUT', describeIssue(result.error.issues[0]))
}
