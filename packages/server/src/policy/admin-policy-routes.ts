import { z } from 'zod'
import { PolicyProblemWire } from '../admin/wire.js'
import { DeputyError } from '../lib/errors.js'
import { MAX_BATCH, type PolicyRouteDeps, route } from './admin-route-record.js'
import {
  ActionWire,
  actionToWire,
  JsonSchemaObject,
  ParsedPolicyWire,
  PolicyVersionWire,
  PolicyWire,
  parsedPolicyToWire,
  policyToWire,
  policyVersionToWire,
  problemToWire,
  schemaText,
} from './admin-wire.js'
import type { StoredPolicy } from './types.js'

// The policy store's routes of the admin API: the policies and their versions, validation, the
// schema in force and the declared actions. A change is in force in this process at once.

const MAX_POLICY_TEXT = 60_000

const PolicyTextBody = z.strictObject({
  text: z.string().min(1, 'must not be empty').max(MAX_POLICY_TEXT).describe('Cedar policy text.'),
  id: z
    .string()
    .optional()
    .describe('The id of the one statement in `text`, when it has no `@id("…")`.'),
})

const DeclareActionsBody = z.strictObject({
  actions: z
    .array(
      z.strictObject({
        name: z.string().describe("The tool's name."),
        resource: z.string().describe("The MCP server's resource indicator."),
        description: z.string().max(500).optional(),
        arguments: JsonSchemaObject.optional(),
        state: JsonSchemaObject.optional(),
      }),
    )
    .max(MAX_BATCH),
})

/**
 * A change made through this process decides this process's next request at once; other
 * processes pick the new policy-set version up on their next refresh.
 */
async function inForceHere(deps: PolicyRouteDeps): Promise<void> {
  await deps.policy.refresh()
}

async function storedPolicy(deps: PolicyRouteDeps, id: string): Promise<StoredPolicy> {
  const policy = await deps.policies.get(id)
  if (!policy) throw new DeputyError('ERR_NOT_FOUND', `no policy ${id}`)
  return policy
}

/** The policies, their versions, the schema and the declared actions (paths under /admin/api). */
export const POLICY_ROUTES = [
  route({
    method: 'get',
    path: '/policies',
    summary: 'List the current policies',
    response: z.object({ policies: z.array(PolicyWire), set_version: z.number() }),
    handle: async ({ deps }) => ({
      policies: (await deps.policies.list()).map(policyToWire),
      set_version: await deps.policies.setVersion(),
    }),
  }),
  route({
    method: 'post',
    path: '/policies',
    summary:
      'Add or change policies: every statement of `text` is validated against the schema and ' +
      'stored as a new version in one transaction; an invalid one stores nothing',
    body: PolicyTextBody,
    response: z.object({ policies: z.array(PolicyWire) }),
    status: 201,
    errors: [400],
    problems: true,
    handle: async ({ deps, body, actor }) => {
      const options = body.id === undefined ? {} : { id: body.id }
      const stored = await deps.policies.put(body.text, actor, options)
      await inForceHere(deps)
      return { policies: stored.map(policyToWire) }
    },
  }),
  route({
    method: 'post',
    path: '/policies/validate',
    summary: 'Validate policy text against the schema in force, storing nothing',
    body: PolicyTextBody,
    response: z.object({
      valid: z.boolean(),
      policies: z.array(ParsedPolicyWire).optional().describe('When valid.'),
      problems: z.array(PolicyProblemWire).optional().describe('When not valid.'),
    }),
    errors: [400],
    handle: async ({ deps, body }) => {
      const result = await deps.policies.validate(
        body.text,
        body.id === undefined ? {} : { id: body.id },
      )
      return result.ok
        ? { valid: true, policies: result.policies.map(parsedPolicyToWire) }
        : { valid: false, problems: result.problems.map(problemToWire) }
    },
  }),
  route({
    method: 'get',
    path: '/policies/:id',
    summary: 'Get a policy',
    response: PolicyWire,
    errors: [404],
    handle: async ({ deps, params }) => policyToWire(await storedPolicy(deps, params.id as string)),
  }),
  route({
    method: 'delete',
    path: '/policies/:id',
    summary: 'Remove a policy (its history stays)',
    response: z.null(),
    noContent: true,
    errors: [404],
    handle: async ({ deps, params, actor }) => {
      await deps.policies.remove(params.id as string, actor)
      await inForceHere(deps)
      return undefined
    },
  }),
  route({
    method: 'get',
    path: '/policies/:id/versions',
    summary: 'Every version of a policy, oldest first (a removal has no text)',
    response: z.object({ versions: z.array(PolicyVersionWire) }),
    errors: [404],
    handle: async ({ deps, params }) => {
      const id = params.id as string
      const versions = await deps.policies.history(id)
      if (versions.length === 0) throw new DeputyError('ERR_NOT_FOUND', `no policy ${id}`)
      return { versions: versions.map(policyVersionToWire) }
    },
  }),
  route({
    method: 'get',
    path: '/policy/schema',
    summary: 'The Cedar schema in force: JSON, and as Cedar schema text',
    response: z.object({
      schema: z.record(z.string(), z.unknown()),
      text: z.string(),
      set_version: z.number(),
    }),
    handle: async ({ deps }) => {
      const schema = await deps.policies.schema()
      return {
        schema,
        text: schemaText(schema),
        set_version: await deps.policies.setVersion(),
      }
    },
  }),
  route({
    method: 'get',
    path: '/policy/actions',
    summary: 'The actions policies can name (one per tool of each server, and `read`)',
    response: z.object({ actions: z.array(ActionWire) }),
    handle: async ({ deps }) => ({ actions: (await deps.policies.actions()).map(actionToWire) }),
  }),
  route({
    method: 'post',
    path: '/policy/actions',
    summary:
      "Declare actions (a resource server's tools) with the JSON Schemas of their arguments and " +
      'state; a change that would make a stored policy invalid is refused',
    body: DeclareActionsBody,
    response: z.object({ actions: z.array(ActionWire) }),
    errors: [400],
    problems: true,
    handle: async ({ deps, body, actor }) => {
      await deps.policies.declareActions(
        body.actions.map((a) => ({
          name: a.name,
          resource: a.resource,
          ...(a.description === undefined ? {} : { description: a.description }),
          ...(a.arguments === undefined ? {} : { arguments: a.arguments }),
          ...(a.state === undefined ? {} : { state: a.state }),
        })),
        actor,
      )
      await inForceHere(deps)
      return { actions: (await deps.policies.actions()).map(actionToWire) }
    },
  }),
]
