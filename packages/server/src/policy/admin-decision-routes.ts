import { z } from 'zod'
import { route } from './admin-route-record.js'
import {
  DecisionWire,
  decisionToWire,
  SimulatedActionWire,
  simulatedActionToWire,
} from './admin-wire.js'
import { authorizationRequest, type DecisionQuery, personSub } from './decision-query.js'
import { typeOf } from './tuple-input.js'

// The decision point's routes of the admin API: explain and authorize one request, simulate what
// an agent may do for a person, and filter documents down to the readable ones.

const PersonFields = {
  person: z.string().min(1).describe('The person: their user id (`sub`) or their email.'),
  client_id: z.string().min(1).optional().describe('The agent (OAuth client id), when one acts.'),
}

const DecisionBody = z.strictObject({
  ...PersonFields,
  action: z
    .string()
    .min(1)
    .describe(
      'The action: its id (`<resource>#<tool>`, `read`), or a tool name (on `resource`, or on ' +
        'the one server that declares it).',
    ),
  resource: z
    .string()
    .optional()
    .describe(
      "An MCP server's resource indicator (the action's tool on it), or `doc:id` / `folder:id`; " +
        "left out, the action's own tool. Another server's tool than the action's is refused.",
    ),
  arguments: z.unknown().optional().describe('Tool arguments.'),
  state: z.record(z.string(), z.unknown()).optional().describe("The person's state."),
  scopes: z.array(z.string()).max(100).optional().describe("The token's scopes."),
  approved: z.boolean().optional().describe('Whether the person approved this call.'),
})

const SimulateBody = z.strictObject(PersonFields)

const FilterReadableBody = z.strictObject({
  ...PersonFields,
  type: z.string().describe('The object type, e.g. `doc`.'),
  objects: z.array(z.string()).max(10_000).describe('Candidate object ids of `type`.'),
  relation: z.string().optional().describe('The relation that lets one read (default: viewer).'),
})

function decisionQuery(body: z.infer<typeof DecisionBody>, requestId?: string): DecisionQuery {
  return {
    person: body.person,
    ...(body.client_id === undefined ? {} : { clientId: body.client_id }),
    action: body.action,
    ...(body.resource === undefined ? {} : { resource: body.resource }),
    ...(body.arguments === undefined ? {} : { arguments: body.arguments }),
    ...(body.state === undefined ? {} : { state: body.state }),
    ...(body.scopes === undefined ? {} : { scopes: body.scopes }),
    ...(body.approved === undefined ? {} : { approved: body.approved }),
    ...(requestId === undefined ? {} : { requestId }),
  }
}

/** Explain, authorize, simulate and filter-readable (paths under /admin/api). */
export const DECISION_ROUTES = [
  route({
    method: 'post',
    path: '/policy/explain',
    summary: 'Decide a request and explain it, without an audit event',
    body: DecisionBody,
    response: DecisionWire,
    errors: [400, 404],
    handle: async ({ deps, body }) =>
      decisionToWire(
        await deps.policy.explain(await authorizationRequest(deps, decisionQuery(body))),
      ),
  }),
  route({
    method: 'post',
    path: '/policy/authorize',
    summary:
      'Decide a request and record it as a policy.decided audit event (for resource servers ' +
      'that ask Deputy remotely)',
    body: DecisionBody,
    response: DecisionWire,
    errors: [400, 404],
    handle: async ({ deps, body, requestId }) =>
      decisionToWire(
        await deps.policy.authorize(
          await authorizationRequest(deps, decisionQuery(body, requestId)),
        ),
      ),
  }),
  route({
    method: 'post',
    path: '/policy/simulate',
    summary: 'What may this agent do for this person: every declared action, decided',
    body: SimulateBody,
    response: z.object({ actions: z.array(SimulatedActionWire), set_version: z.number() }),
    errors: [400],
    handle: async ({ deps, body }) => {
      const rows = await deps.policy.simulate({
        sub: await personSub(deps, body.person),
        ...(body.client_id === undefined ? {} : { clientId: body.client_id }),
      })
      return { actions: rows.map(simulatedActionToWire), set_version: deps.policy.loadedVersion() }
    },
  }),
  route({
    method: 'post',
    path: '/policy/filter-readable',
    summary:
      'Retrieval: the subset of `objects` the person may read through the agent (tuples and policies)',
    body: FilterReadableBody,
    response: z.object({ objects: z.array(z.string()) }),
    errors: [400],
    handle: async ({ deps, body }) => {
      const objects = await deps.policy.filterReadable({
        sub: await personSub(deps, body.person),
        ...(body.client_id === undefined ? {} : { clientId: body.client_id }),
        type: typeOf(body.type),
        objects: body.objects,
        ...(body.relation === undefined ? {} : { relation: body.relation }),
      })
      return { objects }
    },
  }),
]
