import { readFileSync } from 'node:fs'
import type { ToolRule } from '@deputy/mcp'
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

const ruleSchema = z
  .object({
    scopes: z.array(scopeToken).optional(),
    roles: z.array(z.string().min(1)).optional(),
    permissions: z.array(z.string().min(1)).optional(),
  })
  .strict()

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
  const { tools, hideForbiddenTools, challengeScopes } = parsed.data
  return {
    tools,
    hideForbiddenTools,
    ...(parsed.data.default !== undefined && { default: parsed.data.default }),
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
