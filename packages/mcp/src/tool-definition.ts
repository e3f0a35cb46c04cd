import type {
  CallToolResult,
  Icon,
  InputRequiredResult,
  ServerContext,
  StandardSchemaWithJSON,
  ToolAnnotations,
} from '@modelcontextprotocol/server'
import { cedarPolicyDeclaration, type JsonSchema } from './cedar-policy.js'
import type { ToolConnections } from './connections/tool-connections.js'
import type { Identity } from './identity.js'
import type { ToolRule } from './rules.js'
import type { UserState } from './state.js'

/** What a tool handler receives besides its arguments: the SDK context plus the caller. */
export type ProtectedToolContext = ServerContext & {
  /** The verified caller; the access token itself is never handed to tools. */
  readonly identity: Identity
  /** The caller's per-user state. */
  readonly state: UserState
  /**
   * The person's connected accounts (the `connections` option): `token('github', { scope })`
   * exchanges at Deputy for the account's current access token.
   */
  readonly connections: ToolConnections
}

/** Arguments a handler receives: the output type of the tool's input schema. */
export type ToolArguments<I extends StandardSchemaWithJSON | undefined> =
  I extends StandardSchemaWithJSON ? StandardSchemaWithJSON.InferOutput<I> : Record<string, never>

/** A tool handler behind the kit's checks. */
export type ProtectedToolHandler<I extends StandardSchemaWithJSON | undefined> = (
  args: ToolArguments<I>,
  context: ProtectedToolContext,
) => CallToolResult | InputRequiredResult | Promise<CallToolResult | InputRequiredResult>

/** The SDK's `registerTool` config, minus `scopeChallenge`, which the rule provides. */
export interface ProtectedToolConfig<
  I extends StandardSchemaWithJSON | undefined,
  O extends StandardSchemaWithJSON | undefined,
> {
  title?: string
  description?: string
  inputSchema?: I
  outputSchema?: O
  annotations?: ToolAnnotations
  icons?: Icon[]
  _meta?: Record<string, unknown>
}

/**
 * A tool guarded by a Cedar policy, as an action the policy store must know: the shape of
 * `ActionDeclaration` in `@deputy/server` (`deps.policies.declareActions(server.actions())`).
 */
export interface ToolActionDeclaration {
  /** The tool's name; its Cedar action is `Deputy::Action::"<resource>#<name>"`. */
  readonly name: string
  /** This MCP server's resource indicator. */
  readonly resource: string
  readonly description?: string
  /**
   * JSON Schema of the tool's arguments as its input schema parses them, the value both the
   * policy and the handler are given: `context.arguments`.
   */
  readonly arguments: JsonSchema
  /** JSON Schema (object) of the state keys the policy reads: `context.state`. */
  readonly state: JsonSchema
}

/** One registered tool: its name, the rule that guards it, the SDK config and the handler. */
export interface ToolDefinition {
  readonly name: string
  readonly rule: ToolRule
  readonly config: ProtectedToolConfig<
    StandardSchemaWithJSON | undefined,
    StandardSchemaWithJSON | undefined
  >
  readonly handler: ProtectedToolHandler<StandardSchemaWithJSON | undefined>
}

/**
 * The JSON Schema of a tool's arguments as its input schema parses them (the schema's output):
 * what the SDK hands the rule's policy and the handler. It differs from what `tools/list`
 * publishes (the input) where the schema fills defaults (then required) or transforms (then
 * this throws). A tool without a schema takes an empty object (MCP requires an object schema).
 */
export function parsedJsonSchema(schema: StandardSchemaWithJSON | undefined): JsonSchema {
  if (schema === undefined) return { type: 'object', properties: {} }
  const json = schema['~standard'].jsonSchema.output({ target: 'draft-2020-12' })
  return json.type === undefined ? { type: 'object', ...json } : json
}

/** Throws a `TypeError` when a Cedar-guarded tool's arguments cannot be typed for Cedar. */
export function checkCedarArguments(
  name: string,
  rule: ToolRule,
  inputSchema: StandardSchemaWithJSON | undefined,
): void {
  if (cedarPolicyDeclaration(rule.policy) === undefined) return
  try {
    parsedJsonSchema(inputSchema)
  } catch (error) {
    // Cedar types `context.arguments` from this schema; a value it cannot describe could
    // not be decided on the value the handler gets (issue 9 §4).
    throw new TypeError(
      `tool ${name}: a Cedar policy is decided on the parsed arguments, which JSON Schema must describe: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
}

/** The tool as a Cedar action to declare, when its rule uses `cedarPolicy`; otherwise none. */
export function toolActionDeclaration(
  tool: ToolDefinition,
  resource: string,
): ToolActionDeclaration[] {
  const declaration = cedarPolicyDeclaration(tool.rule.policy)
  if (declaration === undefined) return []
  return [
    {
      name: tool.name,
      resource,
      ...(tool.config.description !== undefined && { description: tool.config.description }),
      arguments: parsedJsonSchema(tool.config.inputSchema),
      state: declaration.state,
    },
  ]
}
