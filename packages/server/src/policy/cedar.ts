import * as wasm from '@cedar-policy/cedar-wasm/nodejs'
import type { PolicyProblem } from './types.js'

// The one module that talks to cedar-wasm. Everything else in Deputy sees typed helpers over
// plain data, with Cedar's error locations already turned into line and column of the text the
// person wrote.

export type {
  AuthorizationAnswer,
  Context as CedarContext,
  DetailedError as CedarError,
  EntityJson as CedarEntity,
  EntityUidJson as CedarEntityUid,
  PartialAuthorizationAnswer,
  PartialAuthorizationCall,
  PolicyJson,
  SchemaJson,
  StatefulAuthorizationCall,
} from '@cedar-policy/cedar-wasm/nodejs'

/** A Cedar type in a JSON schema (`{ type: 'String' }`, `{ type: 'Record', attributes }`, …). */
export type CedarType = wasm.Type<string>

/** A Cedar schema in JSON form: `{ Deputy: { entityTypes, actions, commonTypes } }`. */
export type CedarSchema = wasm.SchemaJson<string>

/** One statement of a policy text, and where it starts in that text (a string index). */
export interface PolicyStatement {
  readonly text: string
  readonly offset: number
}

/** A policy text split into statements, or what kept it from parsing (with line and column). */
export type SplitResult =
  | { readonly ok: true; readonly statements: readonly PolicyStatement[] }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] }

/**
 * Splits a Cedar policy text into its statements, in the order they are written, each with its
 * offset in `text` so a later problem in one statement can be reported at its place in the whole
 * text. Syntax errors come back as problems; so do templates (`?principal`), which Deputy does not
 * store.
 */
export function splitPolicyText(text: string): SplitResult {
  const answer = wasm.policySetTextToParts(text)
  if (answer.type === 'failure') {
    return { ok: false, problems: answer.errors.map((error) => problemOf(error, text)) }
  }
  const starts = statementStarts(text)
  const claimed = new Set<number>()
  // Cedar's parts are exact slices of the text but sorted by an internal id ("policy10" before
  // "policy2"): find each one's own start again, then put them back in the written order.
  const locate = (part: string): number => {
    const start = starts.find((s) => !claimed.has(s) && text.startsWith(part, s))
    const offset = start ?? text.indexOf(part)
    claimed.add(offset)
    return offset
  }
  const templates = answer.policy_templates.map((part) => locate(part))
  if (templates.length > 0) {
    return {
      ok: false,
      problems: templates
        .sort((a, b) => a - b)
        .map((offset) => ({
          ...lineAndColumn(text, offset),
          message: 'templates (`?principal`, `?resource`) are not supported',
          help: 'name the principal or resource, or use a `when` condition',
        })),
    }
  }
  const statements = answer.policies
    .map((part) => ({ text: part, offset: locate(part) }))
    .sort((a, b) => a.offset - b.offset)
  return { ok: true, statements }
}

/** The JSON form of one statement (effect, scope, annotations); throws if it does not parse. */
export function policyToJson(statement: string): wasm.PolicyJson {
  const answer = wasm.policyToJson(statement)
  if (answer.type === 'failure') throw new Error(firstMessage(answer.errors))
  return answer.json
}

/** A problem Cedar's validator found in one policy, located in that policy's own text. */
export interface ValidationProblem {
  readonly policyId: string
  /** String index in the policy's text. */
  readonly offset: number
  readonly message: string
  readonly help?: string
}

/**
 * Validates policies (id → one statement) against a schema in strict mode: every attribute and
 * action a policy names must exist in the schema with the type the policy uses. The validator's
 * warnings count as problems too, for a policy without errors: "policy is impossible" (a forbid
 * that can never apply protects nothing, and nobody notices) and invisible or look-alike
 * characters (Trojan Source) have no place in an access rule. Throws if the schema is unusable.
 */
export function validatePolicies(
  schema: CedarSchema,
  policies: Readonly<Record<string, string>>,
): ValidationProblem[] {
  if (Object.keys(policies).length === 0) return []
  const answer = wasm.validate({
    schema,
    policies: { staticPolicies: { ...policies } },
    validationSettings: { mode: 'strict' },
  })
  if (answer.type === 'failure')
    throw new Error(`Cedar validation failed: ${firstMessage(answer.errors)}`)
  const failed = new Set(answer.validationErrors.map((e) => e.policyId))
  const warned = answer.validationWarnings.filter((w) => !failed.has(w.policyId))
  return [...answer.validationErrors, ...warned].map(({ policyId, error }) => {
    const text = policies[policyId] ?? ''
    const start = error.sourceLocations?.[0]?.start ?? 0
    return {
      policyId,
      offset: indexOfByte(text, start),
      message: cleanMessage(error.message, policyId),
      ...hint(error),
    }
  })
}

/** Why a schema does not parse, or undefined when it does. */
export function checkSchema(schema: CedarSchema): string | undefined {
  const answer = wasm.checkParseSchema(schema)
  return answer.type === 'failure' ? firstMessage(answer.errors) : undefined
}

/** The schema in Cedar's human-readable schema syntax, for display (`deputy policy schema`). */
export function toCedarSchemaText(schema: CedarSchema): string {
  const answer = wasm.schemaToText(schema)
  if (answer.type === 'failure') throw new Error(firstMessage(answer.errors))
  return answer.text
}

/**
 * Parses `schema` once and keeps it in cedar-wasm under `name`, for `authorize` calls that name
 * it (`preparsedSchemaName`). Replacing a name is allowed. Throws if the schema does not parse.
 */
export function preparseSchema(name: string, schema: CedarSchema): void {
  const answer = wasm.preparseSchema(name, schema)
  if (answer.type === 'failure') throw new Error(firstMessage(answer.errors))
}

/**
 * Parses a policy set (id → statement) once and keeps it in cedar-wasm under `id`, for
 * `authorize` calls that name it (`preparsedPolicySetId`): the parse cost is paid on load, not on
 * every decision. Replacing an id is allowed; nothing changes when it throws.
 */
export function preparse(id: string, policies: Readonly<Record<string, string>>): void {
  const answer = wasm.preparsePolicySet(id, { staticPolicies: { ...policies } })
  if (answer.type === 'failure') throw new Error(firstMessage(answer.errors))
}

/**
 * One decision over a preparsed policy set (and optionally a preparsed schema, which also checks
 * the request against it). Cedar's answer as is: `success` with `decision` and `diagnostics`
 * (`reason` = determining policy ids, `errors` = policies that failed to evaluate), or `failure`.
 */
export function authorize(call: wasm.StatefulAuthorizationCall): wasm.AuthorizationAnswer {
  return wasm.statefulIsAuthorized(call)
}

/** One decision over policies passed as text (no cache): for tests and one-off explanations. */
export function authorizeOnce(call: wasm.AuthorizationCall): wasm.AuthorizationAnswer {
  return wasm.isAuthorized(call)
}

/** The Cedar language version cedar-wasm implements, for `deputy --version` style output. */
export function cedarVersion(): string {
  return wasm.getCedarVersion()
}

/**
 * A Cedar error on `source` (or on a statement at `offset` in a larger text `whole`) as a
 * problem with 1-based line and column in the whole text. Cedar's source locations count UTF-8
 * bytes; columns count UTF-16 code units (see `lineAndColumn`).
 */
export function problemOf(
  error: wasm.DetailedError,
  source: string,
  options: { policyId?: string; whole?: string; offset?: number } = {},
): PolicyProblem {
  const start = error.sourceLocations?.[0]?.start ?? 0
  const index = (options.offset ?? 0) + indexOfByte(source, start)
  return {
    ...(options.policyId === undefined ? {} : { policyId: options.policyId }),
    ...lineAndColumn(options.whole ?? source, index),
    message: cleanMessage(error.message, options.policyId),
    ...hint(error),
  }
}

/**
 * 1-based line and column of a string index in `text`. Columns count UTF-16 code units, as
 * JavaScript strings, editors (VS Code, Monaco) and the Language Server Protocol do.
 */
export function lineAndColumn(text: string, index: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(index, text.length)))
  const lineStart = before.lastIndexOf('\n') + 1
  let line = 1
  for (let i = before.indexOf('\n'); i !== -1; i = before.indexOf('\n', i + 1)) line++
  return { line, column: before.length - lineStart + 1 }
}

/** The string index in `text` of a UTF-8 byte offset, as Cedar reports locations. */
function indexOfByte(text: string, byteOffset: number): number {
  const bytes = new TextEncoder().encode(text)
  return new TextDecoder().decode(bytes.subarray(0, Math.max(0, byteOffset))).length
}

/**
 * Where statements may start: the beginning of the text and after every `;` that ends one, past
 * spaces and `//` comments. Semicolons in string literals and comments do not count.
 */
function statementStarts(text: string): number[] {
  const starts: number[] = []
  let expectStart = true
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string
    if (ch === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i)
      i = end === -1 ? text.length : end
      continue
    }
    if (/\s/.test(ch)) continue
    if (expectStart) {
      starts.push(i)
      expectStart = false
    }
    if (ch === '"') {
      // Skip the literal, escapes included.
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
      continue
    }
    if (ch === ';') expectStart = true
  }
  return starts
}

/** Cedar's hint, or the label of its first location (a syntax error's "expected …"). */
function hint(error: wasm.DetailedError): { help?: string } {
  const help = error.help ?? error.sourceLocations?.find((l) => l.label)?.label ?? null
  return help ? { help } : {}
}

/** Cedar's message without the prefixes that repeat what the problem's fields already say. */
function cleanMessage(message: string, policyId?: string): string {
  let cleaned = message.replace(/^failed to parse policies from string: /, '')
  if (policyId !== undefined) {
    const prefix = `for policy \`${policyId}\`, `
    if (cleaned.startsWith(prefix)) cleaned = cleaned.slice(prefix.length)
  }
  return cleaned
}

function firstMessage(errors: readonly wasm.DetailedError[]): string {
  return errors[0]?.message ?? 'unknown Cedar error'
}

// ---------------------------------------------------------------------------------------------
// Added for the decision point (engine.ts): partial evaluation, for "what may agent X do for
// person Y" when a tool's arguments are not known.

/** A context value Cedar leaves unknown in `authorizePartially` (`unknown("arguments")`). */
export function unknownValue(name: string): wasm.CedarValueJson {
  return { __extn: { fn: 'unknown', arg: name } }
}

/**
 * One decision with unknowns in the request (policies passed as text, no cache): `decision` is
 * null when it depends on them, and `nontrivialResiduals` names the policies that still do.
 */
export function authorizePartially(
  call: wasm.PartialAuthorizationCall,
): wasm.PartialAuthorizationAnswer {
  return wasm.isAuthorizedPartial(call)
}
