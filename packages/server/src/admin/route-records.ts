import { type Context, Hono, type MiddlewareHandler } from 'hono'
import type { z } from 'zod'
import type { Actor } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import { errorResponse } from '../http/errors.js'
import { DeputyError } from '../lib/errors.js'
import { describeIssue } from './api.js'
import type { AdminEnv } from './auth.js'
import type { AdminRoute } from './openapi.js'

// One route of an admin API part as a record: its description (for openapi.json) and a handler
// that takes `deps` as an argument, so the records are plain data the OpenAPI description can
// import without a running Deputy. `mountAdminRoutes` turns a list of them into a Hono router.

/** What a handler is given. */
export interface AdminCall<D, B> {
  deps: D
  params: Record<string, string>
  /** The query parameters, checked against the route's `query` schema. */
  query: Record<string, string | undefined>
  body: B
  actor: Actor
  requestId: string | undefined
}

/** A route record: its description (for openapi.json) and its handler. */
export interface AdminRouteRecord<D, B = unknown> extends AdminRoute {
  body?: z.ZodType<B>
  /** Resolves to the JSON answer, or undefined for 204. */
  handle(call: AdminCall<D, B>): Promise<unknown>
}

/** Makes the `route(…)` helper of one part: a record typed by its body while it is written. */
export function routeRecords<D>(): <B = undefined>(
  spec: AdminRouteRecord<D, B>,
) => AdminRouteRecord<D, unknown> {
  return (spec) => spec as AdminRouteRecord<D, unknown>
}

const noStore = { 'Cache-Control': 'no-store' }

export interface MountOptions<D> {
  deps: D
  /** The admin gate (admin/auth.ts `requireAdmin`). */
  adminGate: MiddlewareHandler<AdminEnv>
  /** The paths the gate guards (Hono patterns relative to /admin/api). */
  guarded: readonly string[]
  /** Turns a domain error into what the wire says (e.g. camelCase fields to snake_case). */
  errorToWire?: (err: unknown) => unknown
}

/**
 * Mounts a part of the admin API beside the users API, at /admin/api: the same admin API key or
 * signed-in administrator (with X-CSRF-Token on changes); input checked against each record's
 * schemas with one line naming the field at fault; answers never cached.
 */
export function mountAdminRoutes<D>(
  routes: readonly AdminRouteRecord<D, unknown>[],
  options: MountOptions<D>,
): Hono<AppEnv> {
  const app = new Hono<AdminEnv>()
  const toWire = options.errorToWire ?? ((err: unknown) => err)
  app.onError((err, c) => errorResponse(toWire(err) as Error, c as unknown as Context<AppEnv>))
  const gate = options.adminGate
  // Mounted on the same prefix as the users API, whose gate may already have run for this request.
  const auth: MiddlewareHandler<AdminEnv> = (c, next) => (c.get('actor') ? next() : gate(c, next))
  for (const path of options.guarded) app.use(path, auth)

  for (const r of routes) {
    app.on(r.method.toUpperCase(), r.path, async (c) => {
      const query = r.query ? parse(r.query, c.req.query(), 'query') : {}
      const body = r.body ? parse(r.body, await readJson(c), 'body') : undefined
      const result = await r.handle({
        deps: options.deps,
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
