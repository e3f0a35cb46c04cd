import type { StandardSchemaWithJSON } from '@modelcontextprotocol/server'

// The kit builds one McpServer per request (stateless serving), so the SDK converts every tool's
// schema to JSON Schema again for each call (`~standard.jsonSchema.input`: 15-25 µs for a small zod
// object). The SDK is handed a view of the tool's schema that converts once per target and hands
// out that one (frozen) answer: validation and everything else are the schema's own.

type JsonSchemaOf = (options: { target: string }) => Record<string, unknown>

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const item of Object.values(value)) deepFreeze(item)
  }
  return value
}

function memo(convert: JsonSchemaOf): JsonSchemaOf {
  const byTarget = new Map<string, Record<string, unknown>>()
  return (options) => {
    const target = String(options?.target)
    let json = byTarget.get(target)
    if (json === undefined) {
      json = deepFreeze(convert(options))
      byTarget.set(target, json)
    }
    return json
  }
}

/** `schema` with its JSON Schema conversions done once; the schema itself when it has none. */
export function convertedOnce<S extends StandardSchemaWithJSON | undefined>(schema: S): S {
  const standard = (schema as { '~standard'?: Record<string, unknown> } | undefined)?.['~standard']
  const json = standard?.jsonSchema as { input?: JsonSchemaOf; output?: JsonSchemaOf } | undefined
  if (typeof json?.input !== 'function' || typeof json.output !== 'function') return schema
  const view = Object.create(schema as object) as S
  Object.defineProperty(view, '~standard', {
    value: {
      ...standard,
      jsonSchema: { input: memo(json.input), output: memo(json.output) },
    },
  })
  return view
}
