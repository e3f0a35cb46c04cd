import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import { JsonInputError, jsonValueProblem, parseJsonInput } from '../lib/json-input.js'
import type { Store } from '../store/db.js'

// RFC 9396 Rich Authorization Requests: `authorization_details` is a JSON array of objects, each
// with a `type` whose meaning the authorization server defines. Deputy's types are registered
// per resource with a JSON Schema (checked on every request) and a sentence a person reads; one
// type is built in, `tool_call`, which binds an approval to one exact MCP tool call.

/** One authorization detail (RFC 9396 §2). */
export type AuthorizationDetail = { type: string } & Record<string, unknown>

/** A detail type: what it is for, how it is checked, how it reads. */
export interface AuthorizationDetailType {
  /** The resource it belongs to; `*` for the built-in types every resource accepts. */
  resource: string
  type: string
  description: string
  /** JSON Schema (draft 2020-12) of one detail of this type. */
  schema: Record<string, unknown>
  /** The sentence for people, with `{field.path}` placeholders, e.g. `Pay {amount} to {creditor}`. */
  template: string
  /** Approving a detail of this type needs a fresh sign-in. */
  highRisk: boolean
}

/** The built-in type of an approval bound to one MCP tool call: the server, the tool, the arguments. */
export const TOOL_CALL_TYPE = 'tool_call'

export const BUILT_IN_TYPES: readonly AuthorizationDetailType[] = [
  {
    resource: '*',
    type: TOOL_CALL_TYPE,
    description: 'One call of an MCP tool, with exactly these arguments',
    schema: {
      type: 'object',
      properties: {
        type: { const: TOOL_CALL_TYPE },
        server: { type: 'string', minLength: 1, maxLength: 2048 },
        tool: { type: 'string', minLength: 1, maxLength: 200 },
        arguments: { type: 'object' },
      },
      required: ['type', 'server', 'tool', 'arguments'],
      additionalProperties: false,
    },
    template: 'Run {tool} on {server} with {arguments}',
    highRisk: false,
  },
]

/** RFC 9396 §2.2: the common fields every type may carry, checked whatever the type's schema says. */
const COMMON_FIELDS: Record<string, 'strings' | 'string'> = {
  locations: 'strings',
  actions: 'strings',
  datatypes: 'strings',
  identifier: 'string',
  privileges: 'strings',
}

/**
 * The top-level fields a type's schema leaves unnamed, where the schema says nothing about them.
 * RFC 9396 §5 refuses "an object of known type but containing unknown fields"; a JSON Schema
 * allows unnamed properties unless it says otherwise, so an operator's schema without
 * `additionalProperties` (or `patternProperties`, `unevaluatedProperties`) still gets the rule:
 * a field is known when the schema names it, it is one of §2.2's common fields, or it is `type`.
 */
function unknownFields(schema: Record<string, unknown>, detail: Record<string, unknown>): string[] {
  const properties = schema.properties
  if (properties === null || typeof properties !== 'object') return []
  if (
    'additionalProperties' in schema ||
    'patternProperties' in schema ||
    'unevaluatedProperties' in schema
  )
    return []
  return Object.keys(detail).filter(
    (field) => field !== 'type' && !(field in COMMON_FIELDS) && !Object.hasOwn(properties, field),
  )
}

/** Most details one request may carry. */
export const MAX_AUTHORIZATION_DETAILS = 10

/** A request's details were refused; `message` names the field (RFC 9396 §5). */
export class InvalidAuthorizationDetails extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'InvalidAuthorizationDetails'
  }
}

const TYPE_NAME = /^[A-Za-z0-9_.:/-]{1,100}$/

/** Where an ajv error is, as people write it: `authorization_details[0].amount`. */
function fieldOf(index: number, error: ErrorObject): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) =>
      /^\d+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, '/').replace(/~0/g, '~')}`,
    )
    .join('')
  const missing =
    error.keyword === 'required'
      ? `.${(error.params as { missingProperty: string }).missingProperty}`
      : ''
  const extra =
    error.keyword === 'additionalProperties'
      ? `.${(error.params as { additionalProperty: string }).additionalProperty}`
      : ''
  return `authorization_details[${index}]${path}${missing}${extra}`
}

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'is required'
    case 'additionalProperties':
      return 'is not a field of this type'
    default:
      return error.message ?? 'is invalid'
  }
}

/** The value at a dotted path of a detail, for a template placeholder. */
function valueAt(detail: Record<string, unknown>, path: string): unknown {
  let value: unknown = detail
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/** A detail in words: its type's template with the placeholders filled in. */
export function detailSentence(
  type: AuthorizationDetailType | undefined,
  detail: AuthorizationDetail,
): string {
  if (!type) return JSON.stringify(detail)
  return type.template.replace(/\{([A-Za-z0-9_.]+)\}/g, (_, path: string) => {
    const value = valueAt(detail, path)
    if (value === undefined) return '?'
    return typeof value === 'string' ? value : JSON.stringify(value)
  })
}

/** The registry of detail types, and the check of a request's `authorization_details`. */
export function createDetailTypes(deps: { store: Store; clock: Clock; audit: AuditLog }) {
  const db = deps.store.db
  const ajv = new Ajv2020({ strict: true, allErrors: false })
  /** Compiled schemas by `resource type updatedAt`, so a change is compiled once. */
  const compiled = new Map<string, ValidateFunction>()

  function validator(type: AuthorizationDetailType, stamp: string): ValidateFunction {
    const key = `${type.resource} ${type.type} ${stamp}`
    let validate = compiled.get(key)
    if (!validate) {
      validate = ajv.compile(type.schema)
      if (compiled.size > 1000) compiled.clear()
      compiled.set(key, validate)
    }
    return validate
  }

  async function typesOf(
    resource: string,
  ): Promise<(AuthorizationDetailType & { stamp: string })[]> {
    const rows = await db
      .selectFrom('authorization_detail_types')
      .selectAll()
      .where('resource', '=', resource)
      .orderBy('type')
      .execute()
    return [
      ...BUILT_IN_TYPES.map((t) => ({ ...t, stamp: 'built-in' })),
      ...rows.map((row) => ({
        resource: row.resource,
        type: row.type,
        description: row.description,
        schema: JSON.parse(row.schema) as Record<string, unknown>,
        template: row.template,
        highRisk: row.high_risk === 1,
        stamp: String(row.updated_at),
      })),
    ]
  }

  async function list(resource: string): Promise<AuthorizationDetailType[]> {
    return (await typesOf(resource)).map(({ stamp: _stamp, ...type }) => type)
  }

  return {
    /** The types a resource accepts (the built-in ones first). */
    list,

    /** Every type name any resource accepts, for `authorization_details_types_supported`. */
    async names(): Promise<string[]> {
      const rows = await db
        .selectFrom('authorization_detail_types')
        .select('type')
        .distinct()
        .execute()
      return [...new Set([...BUILT_IN_TYPES.map((t) => t.type), ...rows.map((r) => r.type)])].sort()
    },

    /**
     * Checks `authorization_details` as a request sent it (RFC 9396 §2): a JSON array of at most
     * ten objects, each of a type the resource accepts and valid against its schema. Returns the
     * details with their types, or throws InvalidAuthorizationDetails naming the field.
     */
    async check(
      resource: string,
      raw: string | undefined,
    ): Promise<{ details: AuthorizationDetail[]; types: AuthorizationDetailType[] }> {
      if (raw === undefined) return { details: [], types: [] }
      let value: unknown
      try {
        value = parseJsonInput(raw, 'authorization_details')
      } catch (err) {
        if (err instanceof JsonInputError) throw new InvalidAuthorizationDetails(err.message)
        throw err
      }
      if (!Array.isArray(value))
        throw new InvalidAuthorizationDetails('authorization_details must be a JSON array')
      if (value.length > MAX_AUTHORIZATION_DETAILS)
        throw new InvalidAuthorizationDetails(
          `authorization_details may hold at most ${MAX_AUTHORIZATION_DETAILS} objects`,
        )
      const known = await typesOf(resource)
      const types: AuthorizationDetailType[] = []
      value.forEach((detail: unknown, index) => {
        const at = `authorization_details[${index}]`
        if (detail === null || typeof detail !== 'object' || Array.isArray(detail))
          throw new InvalidAuthorizationDetails(`${at} must be an object`)
        const { type } = detail as { type?: unknown }
        if (typeof type !== 'string')
          throw new InvalidAuthorizationDetails(`${at}.type is required`)
        const registered = known.find((t) => t.type === type)
        if (!registered)
          throw new InvalidAuthorizationDetails(
            `${at}.type "${type.slice(0, 100)}" is not accepted for this resource`,
          )
        for (const [field, shape] of Object.entries(COMMON_FIELDS)) {
          const v = (detail as Record<string, unknown>)[field]
          if (v === undefined) continue
          const ok =
            shape === 'string'
              ? typeof v === 'string'
              : Array.isArray(v) && v.every((item) => typeof item === 'string')
          if (!ok)
            throw new InvalidAuthorizationDetails(
              `${at}.${field} must be ${shape === 'string' ? 'a string' : 'an array of strings'}`,
            )
        }
        const [unknown] = unknownFields(registered.schema, detail as Record<string, unknown>)
        if (unknown !== undefined)
          throw new InvalidAuthorizationDetails(
            `${at}.${unknown.slice(0, 100)} is not a field of this type`,
          )
        const validate = validator(registered, registered.stamp)
        if (!validate(detail)) {
          const [error] = validate.errors ?? []
          throw new InvalidAuthorizationDetails(
            error ? `${fieldOf(index, error)} ${describe(error)}` : `${at} is invalid`,
          )
        }
        const { stamp: _stamp, ...plain } = registered
        types.push(plain)
      })
      return { details: value as AuthorizationDetail[], types }
    },

    /** Registers a type for a resource, or replaces it. The schema must compile. */
    async put(
      input: Omit<AuthorizationDetailType, 'highRisk'> & { highRisk?: boolean },
      actor: Actor,
    ) {
      if (!TYPE_NAME.test(input.type))
        throw new DeputyError('ERR_INVALID_INPUT', 'type must be 1-100 letters, digits or _.:/-')
      if (BUILT_IN_TYPES.some((t) => t.type === input.type))
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `${input.type} is built in and cannot be replaced`,
        )
      if (!input.description.trim() || input.description.length > 500)
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'description must be a sentence (at most 500 characters)',
        )
      if (!input.template.trim() || input.template.length > 500)
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'template must be a sentence (at most 500 characters)',
        )
      const problem = jsonValueProblem(input.schema)
      if (problem) throw new DeputyError('ERR_INVALID_INPUT', `schema ${problem}`)
      try {
        new Ajv2020({ strict: true }).compile(input.schema)
      } catch (err) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `schema is not a valid JSON Schema (draft 2020-12): ${(err as Error).message}`,
        )
      }
      const resource = await db
        .selectFrom('resources')
        .select('uri')
        .where('uri', '=', input.resource)
        .executeTakeFirst()
      if (!resource) throw new DeputyError('ERR_NOT_FOUND', `no resource ${input.resource}`)
      const now = deps.clock.now().getTime()
      const values = {
        description: input.description.trim(),
        schema: JSON.stringify(input.schema),
        template: input.template.trim(),
        high_risk: input.highRisk ? 1 : 0,
        updated_at: now,
      }
      await db
        .insertInto('authorization_detail_types')
        .values({ resource: input.resource, type: input.type, created_at: now, ...values })
        .onConflict((oc) => oc.columns(['resource', 'type']).doUpdateSet(values))
        .execute()
      await deps.audit.append({
        type: 'authorization-detail-type.registered',
        actor,
        target: { type: 'resource', id: input.resource },
        data: { type: input.type, highRisk: !!input.highRisk },
      })
      return (await list(input.resource)).find(
        (t) => t.type === input.type,
      ) as AuthorizationDetailType
    },

    /** Removes a registered type from a resource. */
    async remove(resource: string, type: string, actor: Actor): Promise<void> {
      const result = await db
        .deleteFrom('authorization_detail_types')
        .where('resource', '=', resource)
        .where('type', '=', type)
        .executeTakeFirst()
      if (Number(result.numDeletedRows) === 0)
        throw new DeputyError('ERR_NOT_FOUND', `${resource} has no detail type ${type}`)
      await deps.audit.append({
        type: 'authorization-detail-type.removed',
        actor,
        target: { type: 'resource', id: resource },
        data: { type },
      })
    },
  }
}

export type DetailTypes = ReturnType<typeof createDetailTypes>
