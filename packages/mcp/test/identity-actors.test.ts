import { describe, expect, it } from 'vitest'
import { identityFromClaims } from '../src/identity.js'

// RFC 8693 §4.1 `act` as the kit hands it to tools: `identity.actors`, the current actor first
// (docs/delegation.md). A token is small; a claim that is not a chain of `sub`s stops the list.

describe('identity.actors (RFC 8693 §4.1)', () => {
  it('lists the act chain, the current actor first; none for a token nobody exchanged', () => {
    const nested = identityFromClaims({ sub: 'alice', act: { sub: 'C', act: { sub: 'B' } } })
    expect(nested?.actors).toEqual(['C', 'B'])
    expect(nested?.actor).toEqual({ sub: 'C', act: { sub: 'B' } })
    expect(identityFromClaims({ sub: 'alice' })?.actors).toEqual([])
  })

  it('stops at the first actor without a string sub, and after ten', () => {
    expect(identityFromClaims({ sub: 'a', act: { sub: 'C', act: { iss: 'x' } } })?.actors).toEqual([
      'C',
    ])
    expect(identityFromClaims({ sub: 'a', act: 'C' })?.actors).toEqual([])
    let act: Record<string, unknown> = { sub: 'last' }
    for (let i = 0; i < 20; i++) act = { sub: `a${i}`, act }
    expect(identityFromClaims({ sub: 'a', act })?.actors).toHaveLength(10)
  })
})
