import { z } from 'zod'
import type { PolicyProblemWire } from '../admin/wire.js'
import { DeputyError, isDeputyError } from '../lib/errors.js'
import { type CedarSchema, toCedarSchemaText } from './cedar.js'
import type {
  CedarSchemaJson,
  DeclaredAction,
  ParsedPolicy,
  PolicyDecision,
  PolicyProblem,
  PolicyVersion,
  RelationshipTuple,
  SimulatedAction,
  StoredPolicy,
} from './types.js'

// What the policy admin API and `deputy policy|relations … --json` send: snake_case on the wire,
// camelCase in code. The schemas document the answers (admin/openapi.ts); the functions make them.

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

/** A JSON Schema of an object, as declared actions carry them. */
export const JsonSchemaObject = z
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

/** The schema in force as Cedar schema text, the form people read. */
export function schemaText(schema: CedarSchemaJson): string {
  return toCedarSchemaText(schema as CedarSchema)
}
