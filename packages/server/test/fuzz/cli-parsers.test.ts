import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseScopeOption } from '../../src/cli/commands/resources.js'
import { commaList, parseClaimsArgument } from '../../src/cli/commands/users.js'
import { isDeputyError } from '../../src/lib/errors.js'
import {
  formatTuple,
  parseObject,
  parseSubject,
  parseTuple,
} from '../../src/policy/tuple-syntax.js'
import { fuzzSettings } from './fixture.js'

// Issue 14 §3: the CLI's value parsers, in process, under generated input. Each either returns
// or throws the CLI's usage error (ERR_INVALID_INPUT) with one line; nothing else escapes.

/** Strings from the characters the tuple syntax and JSON care about, and any others. */
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({
    unit: fc.constantFrom(':', '#', '@', '*', ' ', 'a', 'b', '_', '-', '.', '/', '\u0000'),
  }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '{"__proto__":{"x":1}}',
    `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    '=x',
    'a=',
  ),
)

/** Runs `parse`; a thrown usage error is fine, as long as its message is one line. */
function parsesOrRefuses(parse: (input: string) => unknown) {
  return (input: string) => {
    try {
      parse(input)
    } catch (err) {
      if (!isDeputyError(err) || err.code !== 'ERR_INVALID_INPUT') throw err
      expect(err.message).not.toMatch(/\n/)
    }
  }
}

describe('CLI value parsers under generated input (issue 14 §3)', () => {
  const settings = fuzzSettings(300)
  for (const [name, parse] of [
    ['parseTuple', parseTuple],
    ['parseObject', parseObject],
    ['parseSubject', parseSubject],
    ['parseScopeOption', parseScopeOption],
    ['parseClaimsArgument', parseClaimsArgument],
    ['commaList', commaList],
  ] as const) {
    it(`${name} returns or refuses with one line`, () => {
      fc.assert(fc.property(text, parsesOrRefuses(parse)), settings)
    })
  }

  it('a tuple that parses is written back to text that parses to the same tuple', () => {
    fc.assert(
      fc.property(text, (input) => {
        let tuple: ReturnType<typeof parseTuple>
        try {
          tuple = parseTuple(input)
        } catch {
          return
        }
        expect(parseTuple(formatTuple(tuple))).toEqual(tuple)
      }),
      settings,
    )
  })

  it('well-formed tuples parse', () => {
    const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/)
    fc.assert(
      fc.property(word, word, word, word, word, (ot, oid, rel, st, sid) => {
        const tuple = parseTuple(`${ot}:${oid}#${rel}@${st}:${sid}`)
        expect(tuple.relation).toBe(rel)
      }),
      settings,
    )
  })
})
