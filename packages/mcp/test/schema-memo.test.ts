import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { convertedOnce } from '../src/schema-memo.js'

describe('convertedOnce (a tool schema the SDK converts per request)', () => {
  const schema = z.object({ text: z.string(), count: z.number().default(1) })
  const view = convertedOnce(schema)

  it('converts once per target and gives the same JSON Schema as the schema', () => {
    const options = { target: 'draft-2020-12' }
    const first = view['~standard'].jsonSchema.input(options)
    expect(first).toEqual(schema['~standard'].jsonSchema.input(options))
    expect(view['~standard'].jsonSchema.input(options)).toBe(first)
    expect(view['~standard'].jsonSchema.output(options)).toEqual(
      schema['~standard'].jsonSchema.output(options),
    )
    expect(view['~standard'].jsonSchema.input({ target: 'draft-07' })).toEqual(
      schema['~standard'].jsonSchema.input({ target: 'draft-07' }),
    )
  })

  it('hands out a frozen answer, so no request can change what the next one gets', () => {
    const json = view['~standard'].jsonSchema.input({ target: 'draft-2020-12' })
    expect(Object.isFrozen(json)).toBe(true)
    expect(Object.isFrozen(json.properties)).toBe(true)
  })

  it('validates as the schema does', async () => {
    expect(await view['~standard'].validate({ text: 'a' })).toEqual({
      value: { text: 'a', count: 1 },
    })
    const refused = await view['~standard'].validate({ text: 1 })
    expect('issues' in refused && refused.issues?.length).toBeGreaterThan(0)
    expect(view.safeParse({ text: 'b' }).success).toBe(true)
  })

  it('leaves a schema without JSON Schema methods, and no schema, as they are', () => {
    const plain = { '~standard': { version: 1, vendor: 'x', validate: () => ({ value: 1 }) } }
    expect(convertedOnce(plain as never)).toBe(plain)
    expect(convertedOnce(undefined)).toBeUndefined()
  })
})
