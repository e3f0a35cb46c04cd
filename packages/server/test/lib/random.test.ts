import { describe, expect, it } from 'vitest'
import { randomId, randomToken } from '../../src/lib/random.js'

describe('random identifiers', () => {
  it('an id people pass to commands never begins with "-", which the CLI would read as an option', () => {
    // One base64url token in 64 begins with '-': 20,000 draws hold ~300 such tokens.
    const tokens = Array.from({ length: 20_000 }, () => randomToken(16))
    expect(tokens.some((t) => t.startsWith('-'))).toBe(true)
    const ids = Array.from({ length: 20_000 }, () => randomId(16))
    expect(ids.filter((id) => id.startsWith('-'))).toEqual([])
    expect(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id))).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
  })
})
