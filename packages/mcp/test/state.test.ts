import { describe, expect, it } from 'vitest'
import { memoryStateStore, userState } from '../src/index.js'
import { stateStoreConformance } from '../src/testing/index.js'

stateStoreConformance('memoryStateStore', () => memoryStateStore())

describe('userState', () => {
  it('binds a store to one person: set, get, update and delete touch only their slice', async () => {
    const store = memoryStateStore()
    const ada = userState(store, { resource: 'https://shop.example/mcp', sub: 'ada' })
    const bob = userState(store, { resource: 'https://shop.example/mcp', sub: 'bob' })
    await ada.set('mode', 'banned')
    expect(await ada.get('mode')).toBe('banned')
    expect(await bob.get('mode')).toBeUndefined()
    expect(await ada.update<number>('visits', (current) => (current ?? 0) + 1)).toBe(1)
    await ada.delete('mode')
    expect(await ada.get('mode')).toBeUndefined()
  })

  it('refuses empty and oversized keys', async () => {
    const ada = userState(memoryStateStore(), { resource: 'https://shop.example/mcp', sub: 'ada' })
    await expect(ada.get('')).rejects.toThrow(/keys/)
    await expect(ada.set('k'.repeat(257), 1)).rejects.toThrow(/keys/)
  })
})
