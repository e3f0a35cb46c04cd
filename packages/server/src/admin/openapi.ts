import { z } from 'zod'
import { ErrorWire } from './wire.js'

/** One admin API route, described once: the same record mounts it and documents it. */
export interface AdminRoute {
  method: 'get' | 'post' | 'put' | 'patch'
  /** Hono path relative to /admin/api, e.g. `/users/:id`. */
  path: string
  summary: string
  body?: z.ZodType
  response: z.ZodType
  /** Success status (default 200). */
  status?: 200 | 201
  /** Error statuses this route can answer besides 401 and 403. */
  errors?: (400 | 404 | 409)[]
  /** No credentials needed (only the description itself). */
  public?: boolean
}

const ERROR_MEANING: Record<number, string> = {
  400: 'Invalid input; the message names the field.',
  401: 'No valid admin API key or session.',
  403: 'Signed in without the deputy:admin permission, or a session change without X-CSRF-Token.',
  404: 'No such user, role or permission.',
  409: 'A user, role or permission with that name already exists.',
}

/** The JSON Schema of a zod schema, as OpenAPI 3.1 embeds it (without its own `$schema`). */
function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' })
  return rest
}

/** Builds the OpenAPI 3.1 description of the admin API from its route records. */
export function openApiDocument(routes: AdminRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  const error = { content: { 'application/json': { schema: schemaOf(ErrorWire, 'output') } } }
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z_]+)/g, '{$1}')
    const parameters = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }))
    const responses: Record<string, unknown> = {
      [String(route.status ?? 200)]: {
        description: 'OK',
        content: { 'application/json': { schema: schemaOf(route.response, 'output') } },
      },
    }
    const errorStatuses = route.public ? [] : [...(route.errors ?? []), 401, 403]
    for (const status of errorStatuses.sort())
      responses[String(status)] = { description: ERROR_MEANING[status], ...error }
    paths[path] = {
      ...paths[path],
      [route.method]: {
        summary: route.summary,
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(route.body
          ? {
              requestBody: {
                required: true,
                content: { 'application/json': { schema: schemaOf(route.body, 'input') } },
              },
            }
          : {}),
        ...(route.public ? { security: [] } : {}),
        responses,
      },
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Deputy admin API',
      version,
      description:
        'Users, roles and permissions. Authenticate with `Authorization: Bearer <admin API key>` ' +
        '(`deputy admin-keys create --name <name>`), or with a signed-in session whose user has ' +
        'the deputy:admin permission; a session must send `X-CSRF-Token` on every change.',
    },
    servers: [{ url: '/admin/api' }],
    components: {
      securitySchemes: { adminApiKey: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ adminApiKey: [] }],
    paths,
  }
}
