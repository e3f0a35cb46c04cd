import { describe, expect, it } from 'vitest'
import type { JsonValue, StateScope, StateStore } from '../state.js'

/**
 * The shared test suite every {@link StateStore} passes (STYLE: one suite for all store
 * implementations). Call it from a vitest file: `stateStoreConformance('sqlite', () => makeStore())`.
 * `makeStore` is called once per test and must return an empty store.
 */
export function stateStoreConformance(
  name: string,
  makeStore: () => StateStore | Promise<StateStore>,
): void {
  const alice: StateScope = { resource: 'https://shop.example/mcp', sub: 'alice' }
  const bob: StateScope = { resource: 'https://shop.example/mcp', sub: 'bob' }
  const aliceElsewhere: StateScope = { resource: 'https://other.example/mcp', sub: 'alice' }

  describe(`StateStore conformance: ${name}`, () => {
    it('reads a key that was never written as undefined', async () => {
      const store = await makeStore()
      expect(await store.read(alice, 'mode')).toBeUndefined()
    })

    it('update creates a value, hands the current one to the next update, and returns the stored value', async () => {
      const store = await makeStore()
      const seen: (JsonValue | undefined)[] = []
      const banned = await store.update(alice, 'mode', (current) => {
        seen.push(current)
        return 'banned'
      })
      expect(banned).toBe('banned')
      const normal = await store.update(alice, 'mode', (current) => {
        seen.push(current)
        return 'normal'
      })
      expect(normal).toBe('normal')
      expect(seen).toEqual([undefined, 'banned'])
      expect(await store.read(alice, 'mode')).toBe('normal')
    })

    it('returning undefined from the updater deletes the key', async () => {
      const store = await makeStore()
      await store.update(alice, 'mode', () => 'banned')
      expect(await store.update(alice, 'mode', () => undefined)).toBeUndefined()
      expect(await store.read(alice, 'mode')).toBeUndefined()
    })

    it('keeps null as a value, distinct from an absent key', async () => {
      const store = await makeStore()
      await store.update(alice, 'nothing', () => null)
      expect(await store.read(alice, 'nothing')).toBeNull()
    })

    it('round-trips nested JSON values exactly', async () => {
      const store = await makeStore()
      const value = {
        orders: [{ id: 'o-1', size: 'L', qty: 2, gift: false }],
        note: 'ünïcödé 👕',
        n: 1.5,
      }
      await store.update(alice, 'cart', () => value)
      expect(await store.read(alice, 'cart')).toEqual(value)
    })

    it('scopes state by person and by resource', async () => {
      const store = await makeStore()
      await store.update(alice, 'mode', () => 'banned')
      expect(await store.read(bob, 'mode')).toBeUndefined()
      expect(await store.read(aliceElsewhere, 'mode')).toBeUndefined()
      await store.update(bob, 'mode', () => 'normal')
      expect(await store.read(alice, 'mode')).toBe('banned')
    })

    it('never loses a write under concurrent updates of one key', async () => {
      const store = await makeStore()
      const writers = 50
      await Promise.all(
        Array.from({ length: writers }, () =>
          store.update(
            alice,
            'counter',
            (current) => (typeof current === 'number' ? current : 0) + 1,
          ),
        ),
      )
      expect(await store.read(alice, 'counter')).toBe(writers)
    })

    it('hands out copies: mutating a value read or returned does not change the stored one', async () => {
      const store = await makeStore()
      const returned = (await store.update(alice, 'cart', () => ({ items: ['shirt'] }))) as {
        items: string[]
      }
      returned.items.push('mug')
      const read = (await store.read(alice, 'cart')) as { items: string[] }
      read.items.push('hat')
      expect(await store.read(alice, 'cart')).toEqual({ items: ['shirt'] })
    })

    it('leaves the value unchanged when the updater throws', async () => {
      const store = await makeStore()
      await store.update(alice, 'mode', () => 'normal')
      await expect(
        store.update(alice, 'mode', () => {
          throw new Error('refused')
        }),
      ).rejects.toThrow('refused')
      expect(await store.read(alice, 'mode')).toBe('normal')
    })
  })
}
