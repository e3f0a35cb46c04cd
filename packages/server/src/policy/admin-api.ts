import { type Context, Hono, type MiddlewareHandler } from 'hono'
import type { z } from 'zod'
import { describeIssue } from '../admin/api.js'
import type { AdminEnv } from '../admin/auth.js'
import type { AppEnv } from '../http/env.js'
import { errorResponse } from '../http/errors.js'
import { DeputyError } from '../lib/errors.js'
import type { PolicyRouteDeps } from './admin-route-record.js'
import { POLICY_ADMIN_ROUTES } from './admin-routes.js'
import { policyErrorToWire } from './admin-wire.js'

const noStore = { 'Cache-Control': 'no-store' }

/**
 * The admin API for policies, decisions and relationship tuples (mounted at /admin/api beside the
 * users API): the same admin API key or signed-in administrator (with X-CSRF-Token on changes),
 * every change an audit event naming them. The routes are described in admin-routes.ts.
 */
export function createPolicyAdminApi(
  deps: PolicyRouteDeps & {
    /** The admin gate (admin/auth.ts `requireAdmin`). */
    adminGate: MiddlewareHandler<AdminEnv>
  },
): Hono<AppEnv> {
  const app = new Hono<AdminEnv>()
  // The policy store's problems are camelCase in code; the wire is snake_case (policy_id).
  app.onError((err, c) => errorResponse(policyErrorToWire(err), c as unknown as Context<AppEnv>))
  const gate = deps.adminGate
  // Mounted on the same prefix as the users API, whose gate may already have run for this request.
  const auth: MiddlewareHandler<AdminEnv> = (c, next) => (c.get('actor') ? next() : gate(c, next))
  for (const path of ['/policies', '/policies/*', '/policy/*', '/relations', '/relations/*'])
    app.use(path, auth)

  for (const r of POLICY_ADMIN_ROUTES) {
    app.on(r.method.toUpperCase(), r.path, async (c) => {
      const query = r.query ? parse(r.query, c.req.query(), 'query') : {}
      const body = r.body ? parse(r.body, await readJson(c), 'body') : undefined
      const result = await r.handle({
        deps,
        params: c.req.param() as Record<string, string>,
        query: query as Record<string, string | undefined>,
        body,
        actor: c.get('actor'),
        requestId: c.get('requestId'),
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

/** Checks input against a route's schema; one line naming the field at fault otherwise. */
function parse<T>(schema: z.ZodType<T>, raw: unknown, where: 'body' | 'query'): T {
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  const message = describeIssue(result.error.issues[0])
  throw new DeputyError(
    'ERR_INVALID_INPUT',
    where === 'query' ? message.replace(/^the request body/, 'the query') : message,
  )
}
