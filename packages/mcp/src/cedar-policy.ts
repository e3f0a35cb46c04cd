import { z } from 'zod'
import type { Decision, ToolPolicy } from './rules.js'
import type { JsonValue } from './state.js'

/** A JSON Schema, as plain data (`{ type: 'string', enum: ['normal', 'banned'] }`). */
export type JsonSchema = Record<string, unknown>

/** One tool call as a policy decision point is asked about it. */
export interface ToolCallAuthorizationRequest {
  /** The MCP server's resource indicator. */
  readonly resource: string
  readonly tool: string
  /** The person (`sub` of the access token). */
  readonly sub: string
  /** The agent acting for them (`client_id`). */
  readonly clientId: string | undefined
  /** The access token's scopes. */
  readonly scopes: readonly string[]
  /** The token's `act` chain, the current actor first (`identity.actors`): `context.chain`. */
  readonly actors?: readonly string[]
  /** The tool's arguments, as validated by its input schema. */
  readonly arguments: unknown
  /** The declared state keys the person has a value for. */
  readonly state: Readonly<Record<string, JsonValue>>
  /**
   * Whether the person approved this call: always false, the decision point is asked before any
   * approval, and a `needs_approval` answer is then met by the person's approval (CIBA).
   */
  readonly approved?: boolean
}

/** What a policy decision point answers: the outcome, the policies that decided it, and why. */
export interface PolicyDecisionPointAnswer {
  readonly decision: 'allow' | 'deny' | 'needs_approval'
  /** Ids of the policies that determined the outcome (empty for a default deny). */
  readonly policies: readonly string[]
  /** One sentence a person can read. */
  readonly explanation: string
  /** The caller's refusal text (a deciding Cedar forbid's `@message`). */
  readonly message?: string
}

/**
 * A policy decision point the kit can ask about tool calls. Deputy's policy engine
 * (`deps.policy` of `@deputy/server`) is one; anything with this method works.
 */
export interface PolicyDecisionPoint {
  authorizeToolCall(request: ToolCallAuthorizationRequest): Promise<PolicyDecisionPointAnswer>
}

/** Options of {@link cedarPolicy}. */
export interface CedarPolicyOptions {
  /**
   * The per-person state keys policies may read as `context.state.<key>`, each with the JSON
   * Schema of its value. Only these keys are read from the caller's state and sent.
   */
  state?: Record<string, JsonSchema>
}

/** What `protectMcpServer(...).actions()` needs to know about a tool guarded by Cedar. */
export interface CedarPolicyDeclaration {
  /** JSON Schema (object) of the declared state keys. */
  readonly state: JsonSchema
}

// Which ToolPolicy functions came from cedarPolicy, and with what state: so the kit can declare
// their tools as actions without the rule having to say it twice.
const declarations = new WeakMap<ToolPolicy, CedarPolicyDeclaration>()

/** The declaration behind a policy made by {@link cedarPolicy}; undefined for any other policy. */
export function cedarPolicyDeclaration(
  policy: ToolPolicy | undefined,
): CedarPolicyDeclaration | undefined {
  return policy === undefined ? undefined : declarations.get(policy)
}

const optionsSchema = z
  .object({
    state: z
      .record(
        // The kit's state keys are 1 to 256 characters (state.ts).
        z.string().min(1).max(256),
        z.custom<JsonSchema>(
          (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
          'must be a JSON Schema object',
        ),
      )
      .optional(),
  })
  .strict()

const answerSchema = z.object({
  decision: z.enum(['allow', 'deny', 'needs_approval']),
  policies: z.array(z.string()).readonly(),
  explanation: z.string(),
  message: z.string().optional(),
})

/**
 * A tool rule's policy decided by a policy decision point — Deputy's Cedar engine — rather than
 * by code: the call is sent as the person, the agent, the tool, its arguments, the token's scopes
 * and the declared state keys; the answer becomes the kit's decision, naming the policies that
 * made it. A deny shows the deciding policy's `@message` (else the kit's generic sentence); a
 * needs-approval answer keeps the tool from running. An unreachable or confused decision point
 * refuses the call (fail closed).
 */
export function cedarPolicy(
  pdp: PolicyDecisionPoint,
  options: CedarPolicyOptions = {},
): ToolPolicy {
  if (typeof pdp?.authorizeToolCall !== 'function')
    throw new TypeError('cedarPolicy: the decision point needs an authorizeToolCall() method')
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success) throw new TypeError(`cedarPolicy: ${z.prettifyError(parsed.error)}`)
  const stateSchemas = { ...(options.state ?? {}) }
  const keys = Object.keys(stateSchemas)

  const policy: ToolPolicy = async ({ resource, identity, tool, arguments: args, state }) => {
    const values: Record<string, JsonValue> = {}
    for (const key of keys) {
      const value = await state.get(key)
      if (value !== undefined) values[key] = value
    }
    const answer = answerSchema.safeParse(
      await pdp.authorizeToolCall({
        resource,
        tool,
        sub: identity.sub,
        clientId: identity.clientId,
        scopes: identity.scopes,
        actors: identity.actors,
        arguments: args,
        state: values,
        approved: false,
      }),
    )
    // Thrown, so the kit refuses and reports it to onError rather than guessing an outcome.
    if (!answer.success) throw new Error(`the policy decision point gave no decision for ${tool}`)
    return toDecision(answer.data)
  }
  // Absent keys are left out of the context, so none is required (`context.state has demoMode`).
  declarations.set(policy, { state: { type: 'object', properties: stateSchemas } })
  return policy
}

function toDecision(answer: z.infer<typeof answerSchema>): Decision {
  const basis = { policies: [...answer.policies], explanation: answer.explanation }
  const message =
    answer.message !== undefined && answer.message !== '' ? { message: answer.message } : {}
  switch (answer.decision) {
    case 'allow':
      return { decision: 'allow', ...basis }
    case 'deny':
      return { decision: 'deny', ...message, ...basis }
    case 'needs_approval':
      return { decision: 'needs_approval', ...message, ...basis }
  }
}
