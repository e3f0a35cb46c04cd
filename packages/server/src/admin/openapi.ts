import { z } from 'zod'
import { ErrorWire, PolicyProblemWire } from './wire.js'

/** One admin API route, described once: the same record mounts it and documents it. */
export interface AdminRoute {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete'
  /** Hono path relative to /admin/api, e.g. `/users/:id`. */
  path: string
  summary: string
  body?: z.ZodType
  /** Query parameters (an object of optional strings). */
  query?: z.ZodObject
  response: z.ZodType
  /** Success status (default 200). */
  status?: 200 | 201
  /** Answers 204 with no body on success (a delete). */
  noContent?: boolean
  /** Error statuses this route can answer besides 401 and 403. */
  errors?: (400 | 404 | 409)[]
  /** Its 400 can carry `problems`: where a policy text is wrong (line, column, message). */
  problems?: boolean
  /** No credentials needed (only the description itself). */
  public?: boolean
}

const ERROR_MEANING: Record<number, string> = {
  400: 'Invalid input; the message names the field.',
  401: 'No valid admin API key or session.',
  403: 'Signed in without the deputy:admin permission, or a session change without X-CSRF-Token.',
  404: 'No such user, role, permission, policy, person, client, resource, approval request, detail type or provider.',
  409: 'A user, role, permission or provider with that name already exists, a permission to delete is still granted by a role, or the approval request was already decided or has expired.',
}

/** The JSON Schema of a zod schema, as OpenAPI 3.1 embeds it (without its own `$schema`). */
function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' })
  return rest
}

const ErrorWithProblemsWire = ErrorWire.extend({
  problems: z
    .array(PolicyProblemWire)
    .optional()
    .describe('With ERR_POLICY_INVALID: every problem, with its line and column.'),
}).describe('ErrorWithProblems')

/**
 * Builds the OpenAPI 3.1 description of the admin API from its route records. The policy and
 * relationship routes (policy/admin-routes.ts), mounted on the same /admin/api by their own
 * router, are described here too, so one document covers the whole admin API.
 */
export function openApiDocument(routes: AdminRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  const error = { content: { 'application/json': { schema: schemaOf(ErrorWire, 'output') } } }
  const errorWithProblems = {
    content: { 'application/json': { schema: schemaOf(ErrorWithProblemsWire, 'output') } },
  }
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z_]+)/g, '{$1}')
    const parameters = [
      ...[...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: false,
        schema: schemaOf(schema as z.ZodType, 'input'),
      })),
    ]
    const responses: Record<string, unknown> = route.noContent
      ? { '204': { description: 'Done; no body.' } }
      : {
          [String(route.status ?? 200)]: {
            description: 'OK',
            content: { 'application/json': { schema: schemaOf(route.response, 'output') } },
          },
        }
    const errorStatuses = route.public ? [] : [...(route.errors ?? []), 401, 403]
    for (const status of errorStatuses.sort())
      responses[String(status)] = {
        description: ERROR_MEANING[status],
        ...(status === 400 && route.problems ? errorWithProblems : error),
      }
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
        'Users, roles and permissions; Cedar policies, relationship tuples and policy ' +
        'decisions (docs/policies.md); approval requests and authorization detail types ' +
        '(docs/approvals.md). Authenticate with `Authorization: Bearer <admin API key>` ' +
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
