import { describe, expect, it } from 'vitest'
import { canonicalJson, canonicalParsedJson } from '../../src/lib/canonical-json.js'

/** Keys that sort differently by UTF-16 code unit than by code point, escapes, numbers, nesting. */
const AWKWARD = {
  ﬀ: 'U+FB00 sorts after the surrogate pair of U+1F600 in UTF-16',
  '😀': 'astral',
  Z: 'upper case sorts before lower case',
  a: ['x', null, 0, -0, 1e21, 5e-7, 0.1, true, false, [], {}],
  é: { 'quote"': 'a "quoted" \\ backslash', control: '\u0000\u0007\n\t\u001f', lone: '\ud800' },
  '': 'the empty key sorts first',
  nested: { z: { y: { x: [{ b: 1, a: 2 }] } } },
  10: 'an integer-like key, which objects list first',
  '2': 'another',
}

/** A seeded random JSON value (xorshift), so a failure names a value that can be found again. */
function randomValue(seed: number, depth = 0): unknown {
  let s = seed
  const next = () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 2 ** 32
  }
  const pick = (depthLeft: number): unknown => {
    const r = next()
    if (depthLeft <= 0 || r < 0.4) {
      const kinds = [null, true, false, next() * 1e6 - 5e5, Math.floor(next() * 100)]
      if (r < 0.2) return kinds[Math.floor(next() * kinds.length)]
      return String.fromCharCode(
        ...Array.from({ length: Math.floor(next() * 6) }, () => Math.floor(next() * 0xffff)),
      )
    }
    if (r < 0.7) return Array.from({ length: Math.floor(next() * 4) }, () => pick(depthLeft - 1))
    const out: Record<string, unknown> = {}
    for (let i = Math.floor(next() * 5); i > 0; i--) {
      out[String.fromCharCode(Math.floor(next() * 0xffff), 97 + i)] = pick(depthLeft - 1)
    }
    return out
  }
  return pick(4 - depth)
}

describe('canonicalParsedJson gives the bytes canonicalJson gives, for JSON-parsed values', () => {
  it('on keys, escapes and numbers that are easy to get wrong', () => {
    const parsed = JSON.parse(JSON.stringify(AWKWARD))
    expect(canonicalParsedJson(parsed)).toBe(canonicalJson(parsed))
    expect(canonicalParsedJson(parsed).startsWith('{"":')).toBe(true)
  })

  it('on primitives, empty containers and a thousand seeded random values', () => {
    for (const v of [null, true, 0, -1.5, '', 'x', [], {}, [[]], { a: {} }]) {
      expect(canonicalParsedJson(v)).toBe(canonicalJson(v))
    }
    for (let seed = 1; seed <= 1000; seed++) {
      const parsed = JSON.parse(JSON.stringify(randomValue(seed)))
      expect(canonicalParsedJson(parsed), `seed ${seed}`).toBe(canonicalJson(parsed))
    }
  })
})
