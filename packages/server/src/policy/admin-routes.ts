import { z } from 'zod'
import type { AdminRoute } from '../admin/openapi.js'
import { PolicyProblemWire } from '../admin/wire.js'
import type { Actor } from '../audit/types.js'
import type { Users } from '../identity/users.js'
import { DeputyError, isDeputyError } from '../lib/errors.js'
import { type CedarSchema, toCedarSchemaText } from './cedar.js'
import { cedarTypeOfTupleType, ENTITY } from './entities.js'
import { READ_ACTION, toolActionId } from './schema.js'
import {
  objectProblem,
  parseObject,
  parseSubject,
  parseTuple,
  relationProblem,
  subjectProblem,
  type TupleObject,
  tupleProblem,
  typeProblem,
} from './tuple-syntax.js'
import type {
  AuthorizationRequest,
  CedarSchemaJson,
  DeclaredAction,
  EntityRef,
  ParsedPolicy,
  Policies,
  PolicyDecision,
  PolicyEngine,
  PolicyProblem,
  PolicyVersion,
  Relationships,
  RelationshipTuple,
  SimulatedAction,
  StoredPolicy,
  TupleSubject,
} from './types.js'

// The policy and relationship routes of the admin API, described once: the same records mount
// them (admin-api.ts) and document them (admin/openapi.ts). Handlers take `deps` as an argument so
// the records are plain data the OpenAPI description can import without a running Deputy. The
// wire shapes and the request building are shared with `deputy policy|relations … --json`.

// ---------------------------------------------------------------------------------------------
// Wire shapes: snake_case on the wire, camelCase in code.

export const PolicyWire = z
  .object({
    id: z.string(),
    version: z.number().describe("This policy's own version: 1 on creation, +1 on each change."),
    set_version: z.number().describe('The policy-set version this write produced.'),
    effect: z.enum(['permit', 'forbid']),
    text: z.string().describe('The Cedar text as written, annotations included.'),
    description: z.string().nullable().describe('`@description("…")`.'),
    message: z.string().nullable().describe('`@message("…")`: the refusal shown to the caller.'),
    actions: z
      .array(z.string())
      .nullable()
      .describe("Actions the policy's scope names; null = every action."),
    created_at: z.string(),
    created_by: z.string(),
  })
  .describe('Policy')

export const PolicyVersionWire = z
  .object({
    id: z.string(),
    version: z.number(),
    set_version: z.number(),
    text: z.string().nullable().describe('Null for the version that removed the policy.'),
    created_at: z.string(),
    created_by: z.string(),
  })
  .describe('PolicyVersion')

export const ParsedPolicyWire = z
  .object({
    id: z.string(),
    effect: z.enum(['permit', 'forbid']),
    text: z.string(),
    description: z.string().nullable(),
    message: z.string().nullable(),
    actions: z.array(z.string()).nullable(),
  })
  .describe('ParsedPolicy')

export const DecisionWire = z
  .object({
    decision: z.enum(['allow', 'deny', 'needs_approval']),
    policies: z
      .array(z.string())
      .describe('The policies that determined it; empty for a default deny.'),
    explanation: z.string().describe('One sentence a person can read.'),
    message: z.string().optional().describe("A deciding forbid's `@message`, for the caller."),
    errors: z.array(z.object({ policy_id: z.string(), message: z.string() })),
    set_version: z.number(),
  })
  .describe('PolicyDecision')

export const SimulatedActionWire = z
  .object({
    action: z.string(),
    resource: z.string().nullable(),
    decision: z.enum(['allow', 'deny', 'needs_approval', 'depends_on_arguments']),
    policies: z.array(z.string()),
    explanation: z.string(),
  })
  .describe('SimulatedAction')

const JsonSchemaObject = z
  .record(z.string(), z.unknown())
  .describe('A JSON Schema of an object (`{"type":"object","properties":{…}}`).')

export const ActionWire = z
  .object({
    id: z
      .string()
      .describe(
        "The Cedar action id policies name: `<resource>#<name>` for a tool, `read` for Deputy's own.",
      ),
    name: z.string().describe("The tool's name."),
    resource: z
      .string()
      .nullable()
      .describe("The MCP server's resource indicator; null for Deputy's own actions (read)."),
    description: z.string().optional(),
    arguments: JsonSchemaObject.optional(),
    state: JsonSchemaObject.optional(),
  })
  .describe('Action')

export const TupleWire = z
  .object({
    object: z.object({ type: z.string(), id: z.string() }),
    relation: z.string(),
    subject: z.object({ type: z.string(), id: z.string(), relation: z.string().optional() }),
  })
  .describe('RelationshipTuple')

/** A stored policy as sent. */
export function policyToWire(policy: StoredPolicy): z.infer<typeof PolicyWire> {
  return {
    id: policy.id,
    version: policy.version,
    set_version: policy.setVersion,
    effect: policy.effect,
    text: policy.text,
    description: policy.description,
    message: policy.message,
    actions: policy.actions === null ? null : [...policy.actions],
    created_at: policy.createdAt,
    created_by: policy.createdBy,
  }
}

/** One version of a policy as sent. */
export function policyVersionToWire(version: PolicyVersion): z.infer<typeof PolicyVersionWire> {
  return {
    id: version.id,
    version: version.version,
    set_version: version.setVersion,
    text: version.text,
    created_at: version.createdAt,
    created_by: version.createdBy,
  }
}

/** A validated, not stored, policy as sent. */
export function parsedPolicyToWire(policy: ParsedPolicy): z.infer<typeof ParsedPolicyWire> {
  return {
    id: policy.id,
    effect: policy.effect,
    text: policy.text,
    description: policy.description,
    message: policy.message,
    actions: policy.actions === null ? null : [...policy.actions],
  }
}

/** A problem in a policy text as sent. */
export function problemToWire(problem: PolicyProblem): z.infer<typeof PolicyProblemWire> {
  return {
    ...(problem.policyId === undefined ? {} : { policy_id: problem.policyId }),
    line: problem.line,
    column: problem.column,
    message: problem.message,
    ...(problem.help === undefined ? {} : { help: problem.help }),
  }
}

/** A decision as sent. */
export function decisionToWire(decision: PolicyDecision): z.infer<typeof DecisionWire> {
  return {
    decision: decision.decision,
    policies: [...decision.policies],
    explanation: decision.explanation,
    ...(decision.message === undefined ? {} : { message: decision.message }),
    errors: decision.errors.map((e) => ({ policy_id: e.policyId, message: e.message })),
    set_version: decision.setVersion,
  }
}

/** One row of a simulation as sent. */
export function simulatedActionToWire(row: SimulatedAction): z.infer<typeof SimulatedActionWire> {
  return {
    action: row.action,
    resource: row.resource,
    decision: row.decision,
    policies: [...row.policies],
    explanation: row.explanation,
  }
}

/** A declared action as sent. */
export function actionToWire(action: DeclaredAction): z.infer<typeof ActionWire> {
  return {
    id: action.id,
    name: action.name,
    resource: action.resource,
    ...(action.description === undefined ? {} : { description: action.description }),
    ...(action.arguments === undefined ? {} : { arguments: action.arguments }),
    ...(action.state === undefined ? {} : { state: action.state }),
  }
}

/** A tuple as sent: the structured form (`deputy relations list` prints the text form). */
export function tupleToWire(tuple: RelationshipTuple): z.infer<typeof TupleWire> {
  return {
    object: { type: tuple.object.type, id: tuple.object.id },
    relation: tuple.relation,
    subject: {
      type: tuple.subject.type,
      id: tuple.subject.id,
      ...(tuple.subject.relation === undefined ? {} : { relation: tuple.subject.relation }),
    },
  }
}

/**
 * The same `ERR_POLICY_INVALID` with its problems in wire form (`policy_id`), so the central
 * error response sends snake_case like everything else on the admin API.
 */
export function policyErrorToWire(err: unknown): unknown {
  if (!isDeputyError(err) || err.code !== 'ERR_POLICY_INVALID' || err.problems === undefined)
    return err
  return new DeputyError(err.code, err.message, {
    problems: (err.problems as PolicyProblem[]).map(problemToWire),
    cause: err,
  })
}

// ---------------------------------------------------------------------------------------------
// Building a decision request from what a person types (the CLI) or sends (the admin API).

/**
 * The `sub` of the person a decision is about, given their user id or their email. Someone Deputy
 * does not know is passed on as given: the engine's decision then says there is no such person
 * (and `authorize` records it), rather than the question failing.
 */
export async function personSub(
  deps: { users: Pick<Users, 'findById' | 'findByEmail'> },
  person: string,
): Promise<string> {
  if (await deps.users.findById(person)) return person
  const byEmail = person.includes('@') ? await deps.users.findByEmail(person) : undefined
  return byEmail?.id ?? person
}

/** The Cedar entity of a tool: `Deputy::Tool` with id `<resource>#<tool>` (see types.ts). */
export function toolEntity(resource: string, tool: string): EntityRef {
  return { type: ENTITY.tool, id: toolActionId(resource, tool) }
}

/**
 * The action and the resource of a decision, from what a person types. The action is an action
 * id as policies name it (`https://shop.example/mcp#buyMcpShopItem`, `read`) or a tool's name
 * (`buyMcpShopItem`): on the server `resource` names, or on the one server that declares it.
 * The resource is an MCP server's URL (the action's tool on it), `doc:x` or `folder:x`; left out,
 * the action's own tool. A resource that is not the action's own is passed on as given, and the
 * engine refuses it (issue 9 §9): this is how one asks whether a call for server B could be
 * made with server A's action.
 */
export async function resolveTarget(
  deps: PolicyRouteDeps,
  action: string,
  resource: string | undefined,
): Promise<{ action: string; resource: EntityRef }> {
  const given = resource === undefined ? undefined : (tool: string) => entityOf(resource, tool)
  // `read` is Deputy's own, unless a server is named: then it is that server's tool `read`.
  if (action === READ_ACTION && !(resource !== undefined && isServerUrl(resource))) {
    if (resource === undefined)
      throw new DeputyError(
        'ERR_INVALID_INPUT',
        `action ${READ_ACTION} needs a resource, e.g. doc:readme or folder:eng`,
      )
    return { action, resource: entityOf(resource, action) }
  }
  const tools = (await deps.policies.actions()).filter(
    (a): a is typeof a & { resource: string } => a.resource !== null,
  )
  const byId = tools.find((a) => a.id === action)
  if (byId) return { action, resource: given?.(byId.name) ?? toolEntity(byId.resource, byId.name) }
  if (resource !== undefined && isServerUrl(resource))
    return { action: toolActionId(resource, action), resource: toolEntity(resource, action) }
  const named = tools.filter((a) => a.name === action)
  const [only] = named
  if (named.length === 1 && only)
    return { action: only.id, resource: given?.(only.name) ?? toolEntity(only.resource, only.name) }
  if (named.length > 1)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `tool ${action} is declared by ${named.length} servers (${named.map((a) => a.resource).join(', ')}): name the server with resource, or the action by its id, e.g. ${named[0]?.id}`,
    )
  throw new DeputyError(
    'ERR_NOT_FOUND',
    `no action ${action} is declared (\`deputy policy actions\` lists them)`,
  )
}

function isServerUrl(resource: string): boolean {
  return /^https?:\/\//i.test(resource)
}

/** An MCP server's URL (its tool `tool`), or `doc:x` / `folder:x`. */
function entityOf(resource: string, tool: string): EntityRef {
  if (isServerUrl(resource)) return toolEntity(resource, tool)
  const entityType = cedarTypeOfTupleType(resource.slice(0, Math.max(0, resource.indexOf(':'))))
  if (entityType === undefined)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `resource ${resource} must be an MCP server URL (https://…) or a document or folder (doc:readme, folder:eng)`,
    )
  return { type: entityType, id: parseObject(resource).id }
}

/** A decision request as a person gives it: who, through which agent, does what to what. */
export interface DecisionQuery {
  /** The person: user id or email. */
  person: string
  clientId?: string
  action: string
  resource?: string
  arguments?: unknown
  state?: Record<string, unknown>
  scopes?: readonly string[]
  approved?: boolean
  requestId?: string
}

/** The engine's request for a query, with the person, agent and resource looked up. */
export async function authorizationRequest(
  deps: PolicyRouteDeps,
  query: DecisionQuery,
): Promise<AuthorizationRequest> {
  return {
    sub: await personSub(deps, query.person),
    ...(query.clientId === undefined ? {} : { clientId: query.clientId }),
    ...(await resolveTarget(deps, query.action, query.resource)),
    scopes: query.scopes ?? [],
    ...(query.arguments === undefined ? {} : { arguments: query.arguments }),
    ...(query.state === undefined ? {} : { state: query.state }),
    approved: query.approved === true,
    ...(query.requestId === undefined ? {} : { requestId: query.requestId }),
  }
}

// ---------------------------------------------------------------------------------------------
// Tuples as sent: the text form (`doc:readme#viewer@group:eng#member`) or the structured one.

const ObjectInput = z
  .union([z.string(), z.strictObject({ type: z.string(), id: z.string() })])
  .describe('`doc:readme`, or `{"type":"doc","id":"readme"}`.')
const SubjectInput = z
  .union([
    z.string(),
    z.strictObject({ type: z.string(), id: z.string(), relation: z.string().optional() }),
  ])
  .describe('`user:alice`, `group:eng#member`, `user:*`, or the same as an object.')
const TupleInput = z
  .union([
    z.string(),
    z.strictObject({ object: ObjectInput, relation: z.string(), subject: SubjectInput }),
  ])
  .describe('`doc:readme#viewer@group:eng#member`, or the same as an object.')

function objectOf(input: z.infer<typeof ObjectInput>): TupleObject {
  if (typeof input === 'string') return parseObject(input)
  const problem = objectProblem(input)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return input
}

function subjectOf(input: z.infer<typeof SubjectInput>): TupleSubject {
  if (typeof input === 'string') return parseSubject(input)
  const problem = subjectProblem(input)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return input
}

function tupleOf(input: z.infer<typeof TupleInput>): RelationshipTuple {
  if (typeof input === 'string') return parseTuple(input)
  const tuple = {
    object: objectOf(input.object),
    relation: input.relation,
    subject: subjectOf(input.subject),
  }
  const problem = tupleProblem(tuple)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return tuple
}

function typeOf(type: string): string {
  const problem = typeProblem(type)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return type
}

function relationOf(relation: string): string {
  const problem = relationProblem(relation)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return relation
}

/** `doc` (every object of a type) or `doc:readme` (one object), as a filter of tuples. */
export function objectFilter(text: string): { type: string; id?: string } {
  return text.includes(':') ? parseObject(text) : { type: typeOf(text.trim()) }
}

// ---------------------------------------------------------------------------------------------
// Request bodies: our own API rejects unknown fields.

const MAX_POLICY_TEXT = 60_000
const MAX_BATCH = 1000

const PolicyTextBody = z.strictObject({
  text: z.string().min(1, 'must not be empty').max(MAX_POLICY_TEXT).describe('Cedar policy text.'),
  id: z
    .string()
    .optional()
    .describe('The id of the one statement in `text`, when it has no `@id("…")`.'),
})

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

const TuplesBody = z.strictObject({ tuples: z.array(TupleInput).min(1).max(MAX_BATCH) })

const CheckBody = z.strictObject({
  object: ObjectInput,
  relation: z.string(),
  subject: SubjectInput,
})

const ListObjectsBody = z.strictObject({
  subject: SubjectInput,
  relation: z.string(),
  type: z.string().describe('The object type, e.g. `doc`.'),
})

const FilterBody = ListObjectsBody.extend({
  objects: z.array(z.string()).max(10_000).describe('Candidate object ids of `type`.'),
})

const FilterReadableBody = z.strictObject({
  ...PersonFields,
  type: z.string().describe('The object type, e.g. `doc`.'),
  objects: z.array(z.string()).max(10_000).describe('Candidate object ids of `type`.'),
  relation: z.string().optional().describe('The relation that lets one read (default: viewer).'),
})

const RelationsQuery = z.strictObject({
  object: z.string().optional().describe('`doc` (a type) or `doc:readme` (one object).'),
  relation: z.string().optional(),
  subject: z.string().optional().describe('`user:alice`, `group:eng#member`, …'),
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .optional()
    .describe('At most this many tuples (1–1000, default 1000).'),
})

// ---------------------------------------------------------------------------------------------
// The routes.

/** What the policy routes use: the policy store, the decision point, tuples and people. */
export interface PolicyRouteDeps {
  policies: Policies
  policy: PolicyEngine
  relationships: Relationships
  users: Pick<Users, 'findById' | 'findByEmail'>
}

/** What a handler is given. */
export interface PolicyCall<B> {
  deps: PolicyRouteDeps
  params: Record<string, string>
  /** The query parameters, checked against the route's `query` schema. */
  query: Record<string, string | undefined>
  body: B
  actor: Actor
  requestId: string | undefined
}

/** A route record: its description (for openapi.json) and its handler. */
export interface PolicyAdminRoute<B = unknown> extends AdminRoute {
  body?: z.ZodType<B>
  /** Resolves to the JSON answer, or undefined for 204. */
  handle(call: PolicyCall<B>): Promise<unknown>
}

function route<B = undefined>(spec: PolicyAdminRoute<B>): PolicyAdminRoute<unknown> {
  return spec as PolicyAdminRoute<unknown>
}

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

/** Every policy and relationship route of the admin API (paths relative to /admin/api). */
export const POLICY_ADMIN_ROUTES: readonly PolicyAdminRoute<unknown>[] = [
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
  route({
    method: 'get',
    path: '/relations',
    summary: 'Relationship tuples matching a filter (any part may be left out)',
    query: RelationsQuery,
    response: z.object({ tuples: z.array(TupleWire) }),
    errors: [400],
    handle: async ({ deps, query: filter }) => {
      const limit = filter.limit === undefined ? 1000 : Number(filter.limit)
      if (limit < 1 || limit > 1000)
        throw new DeputyError('ERR_INVALID_INPUT', 'limit must be from 1 to 1000')
      const tuples = await deps.relationships.read(
        {
          ...(filter.object === undefined ? {} : { object: objectFilter(filter.object) }),
          ...(filter.relation === undefined ? {} : { relation: relationOf(filter.relation) }),
          ...(filter.subject === undefined ? {} : { subject: parseSubject(filter.subject) }),
        },
        limit,
      )
      return { tuples: tuples.map(tupleToWire) }
    },
  }),
  route({
    method: 'post',
    path: '/relations',
    summary: 'Write tuples in one transaction (an existing tuple is kept)',
    body: TuplesBody,
    response: z.object({ written: z.number().describe('Tuples that were not there before.') }),
    errors: [400],
    handle: async ({ deps, body, actor }) =>
      deps.relationships.write(body.tuples.map(tupleOf), actor),
  }),
  route({
    method: 'post',
    path: '/relations/delete',
    summary: 'Delete tuples in one transaction (absent ones are ignored)',
    body: TuplesBody,
    response: z.object({ deleted: z.number() }),
    errors: [400],
    handle: async ({ deps, body, actor }) =>
      deps.relationships.delete(body.tuples.map(tupleOf), actor),
  }),
  route({
    method: 'post',
    path: '/relations/check',
    summary: 'Does the subject have the relation on the object, directly or through usersets?',
    body: CheckBody,
    response: z.object({ allowed: z.boolean() }),
    errors: [400],
    handle: async ({ deps, body }) => {
      const tuple = tupleOf({ object: body.object, relation: body.relation, subject: body.subject })
      return { allowed: await deps.relationships.check(tuple) }
    },
  }),
  route({
    method: 'post',
    path: '/relations/list-objects',
    summary: 'Every object of a type on which the subject has the relation',
    body: ListObjectsBody,
    response: z.object({ objects: z.array(z.string()) }),
    errors: [400],
    handle: async ({ deps, body }) => ({
      objects: await deps.relationships.listObjects({
        subject: subjectOf(body.subject),
        relation: relationOf(body.relation),
        type: typeOf(body.type),
      }),
    }),
  }),
  route({
    method: 'post',
    path: '/relations/filter',
    summary: 'The subset of `objects` on which the subject has the relation, in their order',
    body: FilterBody,
    response: z.object({ objects: z.array(z.string()) }),
    errors: [400],
    handle: async ({ deps, body }) => ({
      objects: await deps.relationships.filter({
        subject: subjectOf(body.subject),
        relation: relationOf(body.relation),
        type: typeOf(body.type),
        objects: body.objects,
      }),
    }),
  }),
]

/** The schema in force as Cedar schema text, the form people read. */
export function schemaText(schema: CedarSchemaJson): string {
  return toCedarSchemaText(schema as CedarSchema)
}
