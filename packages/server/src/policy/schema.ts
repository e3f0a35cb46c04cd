import type { CedarSchema, CedarType } from './cedar.js'
import {
  type ActionDeclaration,
  CEDAR_NAMESPACE,
  type CedarSchemaJson,
  type DeclaredAction,
} from './types.js'

// Deputy's Cedar schema: the model of policy/types.ts (CEDAR_NAMESPACE) in Cedar's JSON schema
// form, with one action per declared tool of each server, whose context carries the tool's
// arguments and the person's state as typed records built from their JSON Schemas.

/** The action Deputy itself decides for retrieval: may this person read this document? */
export const READ_ACTION = 'read'

/** Deputy's own actions, always in the schema and never declared by a tool. */
export const DEPUTY_ACTIONS: readonly DeclaredAction[] = [
  {
    id: READ_ACTION,
    name: READ_ACTION,
    resource: null,
    description: 'Read a document or folder (retrieval filtering).',
  },
]

/**
 * The Cedar action id of a server's tool: `<resource>#<tool>`, the id of its `Deputy::Tool` too.
 * Tools of two servers with one name are two actions (issue 9 §9); a resource indicator has no
 * fragment (RFC 8707 §2), so the last `#` separates the tool, and no tool's id is Deputy's own
 * `read` or a server's action group (the resource indicator itself).
 */
export function toolActionId(resource: string, tool: string): string {
  return `${resource}#${tool}`
}

/** The Cedar action id of a declaration: its tool's on its server, or Deputy's own (`read`). */
export function actionIdOf(action: ActionDeclaration): string {
  return action.resource === null ? action.name : toolActionId(action.resource, action.name)
}

/** The declaration with its Cedar action id. */
export function declared(action: ActionDeclaration): DeclaredAction {
  return { id: actionIdOf(action), ...action }
}

const STRING: CedarType = { type: 'String' }
const LONG: CedarType = { type: 'Long' }
const BOOL: CedarType = { type: 'Boolean' }
const STRINGS: CedarType = { type: 'Set', element: STRING }

/** A record attribute; `required` is Cedar's default, so only optional ones say so. */
function attr(type: CedarType, required = true): CedarType & { required?: boolean } {
  return required ? type : { ...type, required: false }
}

function record(attributes: Record<string, CedarType & { required?: boolean }>): CedarType {
  return { type: 'Record', attributes }
}

/** What every action's context has, whatever the action: who acts, with what, and when. */
function baseContext(): Record<string, CedarType & { required?: boolean }> {
  return {
    // Absent when the person acts themself, not through an agent.
    agent: attr({ type: 'Entity', name: 'Agent' }, false),
    scopes: STRINGS,
    now: { type: 'Extension', name: 'datetime' },
    // 0–23 in UTC: business-hours rules without datetime arithmetic.
    hour: LONG,
    approved: BOOL,
    // RFC 8693 delegation (docs/delegation.md): the actors of the token's `act`, and how many.
    // Cedar sets have no order or size, hence `depth`; empty and 0 for a token nobody exchanged.
    chain: STRINGS,
    depth: LONG,
  }
}

/** The entity types of Deputy's model (see CEDAR_NAMESPACE in types.ts). */
function entityTypes(): Record<string, unknown> {
  return {
    Role: {},
    Group: { memberOfTypes: ['Group'] },
    Person: {
      memberOfTypes: ['Role', 'Group'],
      shape: record({ email: STRING, name: STRING, roles: STRINGS, permissions: STRINGS }),
      // Custom claims: strings as they are, other JSON values as their JSON text.
      tags: STRING,
    },
    Agent: {
      shape: record({
        clientId: STRING,
        name: STRING,
        kind: STRING,
        firstParty: BOOL,
        verifiedDomain: attr(STRING, false),
      }),
    },
    Server: { shape: record({ uri: STRING }) },
    Tool: { memberOfTypes: ['Server'], shape: record({ name: STRING, server: STRING }) },
    Folder: { memberOfTypes: ['Folder'] },
    Document: { memberOfTypes: ['Folder'] },
  }
}

/**
 * Deputy's Cedar schema with an action per declared tool (`<resource>#<tool>`): principal
 * `Person`, resource `Tool`, context `{ agent?, scopes, now, hour, approved, chain, depth, arguments, state }`
 * where `arguments` and `state` are the records `recordOfJsonSchema` makes of the declaration;
 * each in its server's action group (`Deputy::Action::"<resource>"`, for "every tool of this
 * server"); plus Deputy's own `read` on `Document` or `Folder` with `relations` (the person's
 * relations to it) in context.
 */
export function buildCedarSchema(actions: readonly ActionDeclaration[]): CedarSchemaJson {
  const cedarActions: Record<string, unknown> = {
    [READ_ACTION]: {
      appliesTo: {
        principalTypes: ['Person'],
        resourceTypes: ['Document', 'Folder'],
        context: record({ ...baseContext(), relations: STRINGS }),
      },
    },
  }
  for (const action of actions) {
    // Deputy's own actions are above; a declaration always names its server.
    if (action.resource === null) continue
    cedarActions[action.resource] = {}
    cedarActions[toolActionId(action.resource, action.name)] = {
      memberOf: [{ id: action.resource }],
      appliesTo: {
        principalTypes: ['Person'],
        resourceTypes: ['Tool'],
        context: record({
          ...baseContext(),
          arguments: recordOfJsonSchema(action.arguments),
          state: recordOfJsonSchema(action.state),
        }),
      },
    }
  }
  return {
    [CEDAR_NAMESPACE]: { entityTypes: entityTypes(), actions: cedarActions, commonTypes: {} },
  }
}

/** The schema as cedar.ts's helpers take it. */
export function asCedarSchema(schema: CedarSchemaJson): CedarSchema {
  return schema as CedarSchema
}

/**
 * The Cedar record for an object JSON Schema (a tool's `inputSchema`, a state declaration): each
 * property whose type Cedar can represent, required when the schema's `required` lists it. An
 * absent schema is the empty record. See `cedarTypeOfJsonSchema` for what is left out.
 */
export function recordOfJsonSchema(schema: Record<string, unknown> | undefined): CedarType {
  if (schema === undefined) return record({})
  return cedarTypeOfJsonSchema({ ...schema, type: 'object' }) ?? record({})
}

/**
 * The Cedar type of a JSON Schema, or undefined when Cedar cannot represent it:
 * `string` → String, a string `enum` or `const` → String, `integer` → Long, `boolean` → Boolean,
 * `array` of a representable `items` → Set, `object` → Record of its representable `properties`
 * (required as `required` says). Left out, never guessed: `number` (Cedar has no fractions, and
 * truncating `0.5` would let a policy compare the wrong value), `null`, type unions
 * (`["string","null"]`), `anyOf`/`oneOf`/`allOf`, `$ref`, and arrays without `items`. A
 * property left out is not in the record, so a policy that names it fails validation — which
 * is the point: the validator tells the author rather than the decision being made on nothing.
 */
export function cedarTypeOfJsonSchema(schema: unknown): CedarType | undefined {
  if (!isObject(schema)) return undefined
  if (schema.$ref !== undefined || schema.anyOf || schema.oneOf || schema.allOf) return undefined
  const type = schema.type
  if (type === undefined) {
    if (Array.isArray(schema.enum) && schema.enum.every((v) => typeof v === 'string')) return STRING
    if (typeof schema.const === 'string') return STRING
    return undefined
  }
  switch (type) {
    case 'string':
      return STRING
    case 'integer':
      return LONG
    case 'boolean':
      return BOOL
    case 'array': {
      const element = cedarTypeOfJsonSchema(schema.items)
      return element === undefined ? undefined : { type: 'Set', element }
    }
    case 'object': {
      const properties = isObject(schema.properties) ? schema.properties : {}
      const required = new Set(
        Array.isArray(schema.required)
          ? schema.required.filter((r): r is string => typeof r === 'string')
          : [],
      )
      const attributes: Record<string, CedarType & { required?: boolean }> = {}
      for (const [name, property] of Object.entries(properties)) {
        const cedar = cedarTypeOfJsonSchema(property)
        if (cedar !== undefined) attributes[name] = attr(cedar, required.has(name))
      }
      return record(attributes)
    }
    default:
      return undefined
  }
}

/**
 * A JSON value shaped to a Cedar type, for a request's context: what fits is kept, what does not
 * is left out (an unknown attribute above all; the engine refuses arguments and state of the
 * wrong type before, with `misfitOf`). Undefined when the value itself does not fit. A required
 * attribute that is missing stays missing: Cedar then refuses to evaluate a policy that reads
 * it, and a forbid that cannot be evaluated denies (fail closed).
 */
export function fitToCedarType(type: CedarType, value: unknown): unknown {
  switch ((type as { type: string }).type) {
    case 'String':
      return typeof value === 'string' ? value : undefined
    case 'Long':
      return Number.isSafeInteger(value) ? value : undefined
    case 'Boolean':
      return typeof value === 'boolean' ? value : undefined
    case 'Set': {
      if (!Array.isArray(value)) return undefined
      const element = (type as { element: CedarType }).element
      const fitted = value.map((v) => fitToCedarType(element, v))
      return fitted.some((v) => v === undefined) ? undefined : fitted
    }
    case 'Record': {
      if (!isObject(value)) return undefined
      const attributes = (type as { attributes: Record<string, CedarType> }).attributes
      const out: Record<string, unknown> = {}
      for (const [name, attribute] of Object.entries(attributes)) {
        if (!Object.hasOwn(value, name)) continue
        const fitted = fitToCedarType(attribute, value[name])
        if (fitted !== undefined) out[name] = fitted
      }
      return out
    }
    default:
      return undefined
  }
}

/**
 * Why `value` does not fit a Cedar type, or undefined when it does: the first attribute of the
 * wrong type (a fraction or a numeric string where a Long is declared, a non-string in a
 * Set<String>, …) or a required attribute that is missing, named by its path (argument
 * `quantity`, `address.city`, `tags[2]`; `names` says what the value is). Attributes the type does not declare are no misfit: no policy can
 * read them. A request whose arguments or state misfit is refused rather than decided without
 * them (issue 9 §4): left out, a `has`-guarded forbid would not apply while the handler acted
 * on the value.
 */
export function misfitOf(
  type: CedarType,
  value: unknown,
  names: { readonly whole: string; readonly part: string },
  path = '',
): string | undefined {
  const at = path === '' ? names.whole : `${names.part} \`${path}\``
  switch ((type as { type: string }).type) {
    case 'String':
      return typeof value === 'string' ? undefined : `${at} must be a string`
    case 'Long':
      return Number.isSafeInteger(value) ? undefined : `${at} must be a whole number`
    case 'Boolean':
      return typeof value === 'boolean' ? undefined : `${at} must be true or false`
    case 'Set': {
      if (!Array.isArray(value)) return `${at} must be a list`
      const element = (type as { element: CedarType }).element
      for (const [i, item] of value.entries()) {
        const found = misfitOf(element, item, names, `${path}[${i}]`)
        if (found !== undefined) return found
      }
      return undefined
    }
    case 'Record': {
      if (!isObject(value)) return `${at} must be an object`
      const attributes = (
        type as { attributes: Record<string, CedarType & { required?: boolean }> }
      ).attributes
      for (const [name, attribute] of Object.entries(attributes)) {
        const inner = path === '' ? name : `${path}.${name}`
        if (!Object.hasOwn(value, name)) {
          if (attribute.required !== false) return `${names.part} \`${inner}\` is required`
          continue
        }
        const found = misfitOf(attribute, value[name], names, inner)
        if (found !== undefined) return found
      }
      return undefined
    }
    default:
      return `${at} has a type Deputy does not know`
  }
}

/**
 * The Cedar record types of an action's `arguments` and `state` in a schema built by
 * `buildCedarSchema` (`action` is the action id, `<resource>#<tool>`), or undefined for an action
 * it does not have (or `read`, which has neither, or a server's action group).
 */
export function contextRecordsOf(
  schema: CedarSchemaJson,
  action: string,
): { arguments: CedarType; state: CedarType } | undefined {
  const namespace = schema[CEDAR_NAMESPACE] as
    | { actions: Record<string, { appliesTo?: { context?: CedarType } }> }
    | undefined
  const context = namespace?.actions[action]?.appliesTo?.context as
    | { attributes?: Record<string, CedarType> }
    | undefined
  const args = context?.attributes?.arguments
  const state = context?.attributes?.state
  return args && state ? { arguments: args, state } : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
