import { readFileSync } from 'node:fs'
import type { ApprovalRule, PolicyContext, ToolRule } from '@deputy/mcp'
import { z } from 'zod'
import { DeputyError } from '../lib/errors.js'

/** The gateway's rules file: a rule per upstream tool name, and one for every other tool. */
export interface GatewayRules {
  /** Rule per tool name. */
  readonly tools: Readonly<Record<string, ToolRule>>
  /** Rule for tools the file does not name; none means they need only a valid token. */
  readonly default?: ToolRule
  /** Leave tools out of `tools/list` when the caller's roles or permissions rule them out. */
  readonly hideForbiddenTools: boolean
  /** Scopes named in the 401 challenge; default: every scope a rule names. */
  readonly challengeScopes?: readonly string[]
}

// RFC 6749 §3.3 scope-token; offline_access belongs to the client and the AS, never to a resource
// (MCP authorization "Refresh Tokens").
const scopeToken = z
  .string()
  .regex(/^[\u0021\u0023-\u005B\u005D-\u007E]+$/, 'not an OAuth scope token')
  .refine((scope) => scope !== 'offline_access', 'offline_access is not a resource scope')

// Issue 11 §5: the person's approval, asked through Deputy (CIBA) for each call, or for those
// with a numeric argument over its limit; the binding message may name arguments as {name}.
const approvalSchema = z
  .object({
    bindingMessage: z.string().min(1).max(100).optional(),
    over: z.record(z.string().min(1), z.number()).optional(),
  })
  .strict()

const ruleSchema = z
  .object({
    scopes: z.array(scopeToken).optional(),
    roles: z.array(z.string().min(1)).optional(),
    permissions: z.array(z.string().min(1)).optional(),
    approval: approvalSchema.optional(),
  })
  .strict()

type ApprovalInput = z.infer<typeof approvalSchema>

function argumentsOf(context: PolicyContext): Record<string, unknown> {
  const args = context.arguments
  return args !== null && typeof args === 'object' ? (args as Record<string, unknown>) : {}
}

/** The kit's approval rule for a rules file's `approval`. */
function approvalRule(input: ApprovalInput): ApprovalRule {
  const { over, bindingMessage } = input
  return {
    ...(over !== undefined && {
      // Over the limit: a number above it. Anything else is not "over".
      when: (context: PolicyContext) => {
        const args = argumentsOf(context)
        return Object.entries(over).some(([name, limit]) => {
          const value = args[name]
          return typeof value === 'number' && value > limit
        })
      },
    }),
    ...(bindingMessage !== undefined && {
      bindingMessage: (context: PolicyContext) => {
        const args = argumentsOf(context)
        return bindingMessage.replaceAll(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) =>
          Object.hasOwn(args, name) ? String(args[name]) : whole,
        )
      },
    }),
  }
}

function toolRule(input: z.infer<typeof ruleSchema>): ToolRule {
  const { approval, ...rest } = input
  return approval === undefined ? rest : { ...rest, approval: approvalRule(approval) }
}

const rulesSchema = z
  .object({
    tools: z.record(z.string().min(1), ruleSchema).default({}),
    default: ruleSchema.optional(),
    hideForbiddenTools: z.boolean().default(false),
    challengeScopes: z.array(scopeToken).optional(),
  })
  .strict()

/** No rules: every tool needs only a valid token for this resource. */
export const NO_RULES: GatewayRules = { tools: {}, hideForbiddenTools: false }

/** Validates a parsed rules document; throws `ERR_INVALID_INPUT` naming the bad field. */
export function parseRules(input: unknown, source = 'rules'): GatewayRules {
  const parsed = rulesSchema.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const at = issue?.path.length ? issue.path.join('.') : '(top level)'
    throw new DeputyError('ERR_INVALID_INPUT', `${source}: ${at}: ${issue?.message ?? 'invalid'}`)
  }
  const { hideForbiddenTools, challengeScopes } = parsed.data
  const tools = Object.fromEntries(
    Object.entries(parsed.data.tools).map(([name, rule]) => [name, toolRule(rule)]),
  )
  return {
    tools,
    hideForbiddenTools,
    ...(parsed.data.default !== undefined && { default: toolRule(parsed.data.default) }),
    ...(challengeScopes !== undefined && { challengeScopes }),
  }
}

/** Reads and validates a rules file (JSON). */
export function loadRules(file: string): GatewayRules {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `cannot read rules file ${file}: ${(err as Error).message}`,
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `rules file ${file} is not JSON: ${(err as Error).message}`,
    )
  }
  return parseRules(json, `rules file ${file}`)
}

/** The rule guarding `tool`: its own, else the default, else none. */
export function ruleFor(rules: GatewayRules, tool: string): ToolRule | undefined {
  return Object.hasOwn(rules.tools, tool) ? rules.tools[tool] : rules.default
}

/** Every scope any rule names: what the Protected Resource Metadata advertises. */
export function scopesOf(rules: GatewayRules): string[] {
  const all = [...Object.values(rules.tools), ...(rules.default ? [rules.default] : [])]
  return [...new Set(all.flatMap((rule) => rule.scopes ?? []))]
}
