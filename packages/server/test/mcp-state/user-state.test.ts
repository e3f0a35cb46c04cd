import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { JsonValue, UserStateStore } from '../../src/mcp-state/index.js'
import { createSqlUserStateStore } from '../../src/mcp-state/index.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'

const INCREMENTER = fileURLToPath(new URL('./fixtures/increment.mjs', import.meta.url))
const SHOP = 'https://shop.example/mcp'
const OTHER = 'https://other.example/mcp'
const alice = { resource: SHOP, sub: 'user-1' }
const bob = { resource: SHOP, sub: 'user-2' }

async function openMigrated(url: string): Promise<Store> {
  const store = openStore(url)
  await migrateToLatest(store)
  return store
}

const increment = (current: JsonValue | undefined) =>
  (typeof current === 'number' ? current : 0) + 1

/** Runs the built incrementer in its own process (needs packages/server/dist). */
function runIncrementer(database: string, count: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INCREMENTER, database, String(count)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    child.on('error', reject)
    child.on('exit', resolve)
  })
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`per-user MCP state store (${dialect.name})`, () => {
    let database: TestDatabase
    let store: Store
    let state: UserStateStore
    beforeEach(async () => {
      database = await dialect.create()
      store = await openMigrated(database.url)
      state = createSqlUserStateStore({ store })
    })
    afterEach(async () => {
      await store.close()
      await database.dispose()
    })

    it('reads undefined for a key never written, and back what was written', async () => {
      expect(await state.read(alice, 'demoMode')).toBeUndefined()
      expect(await state.update(alice, 'demoMode', () => 'banned')).toBe('banned')
      expect(await state.read(alice, 'demoMode')).toBe('banned')
      const profile = { sizes: ['L', 'XL'], note: 'café ✓', nested: { ok: true, n: null } }
      await state.update(alice, 'profile', () => profile)
      expect(await state.read(alice, 'profile')).toEqual(profile)
    })

    it('keeps one person apart from another, and one resource apart from another', async () => {
      await state.update(alice, 'demoMode', () => 'banned')
      expect(await state.read(bob, 'demoMode')).toBeUndefined()
      expect(await state.read({ resource: OTHER, sub: 'user-1' }, 'demoMode')).toBeUndefined()
      await state.update(bob, 'demoMode', () => 'normal')
      await state.update({ resource: OTHER, sub: 'user-1' }, 'demoMode', () => 'normal')
      expect(await state.read(alice, 'demoMode')).toBe('banned')
      await state.delete(bob, 'demoMode')
      expect(await state.read(alice, 'demoMode')).toBe('banned')
    })

    it('hands update the current value and deletes the key when it returns undefined', async () => {
      await state.update(alice, 'demoMode', () => 'banned')
      const seen: (JsonValue | undefined)[] = []
      const result = await state.update(alice, 'demoMode', (current) => {
        seen.push(current)
        return undefined
      })
      expect(seen).toEqual(['banned'])
      expect(result).toBeUndefined()
      expect(await state.read(alice, 'demoMode')).toBeUndefined()
      expect(await state.delete(alice, 'demoMode')).toBe(false)
    })

    it('leaves the stored value alone when update throws', async () => {
      await state.update(alice, 'counter', () => 1)
      await expect(
        state.update(alice, 'counter', () => {
          throw new Error('no')
        }),
      ).rejects.toThrow('no')
      expect(await state.read(alice, 'counter')).toBe(1)
      // The lock was released: the next writer gets through.
      expect(await state.update(alice, 'counter', increment)).toBe(2)
    })

    it('refuses a value that is not JSON or is too large, naming the key', async () => {
      await expect(state.update(alice, 'bad', () => 10n as never)).rejects.toThrow(
        'state value for "bad" is not JSON',
      )
      await expect(state.update(alice, 'big', () => 'x'.repeat(70 * 1024))).rejects.toThrow(
        'state value for "big" is larger than 64 KiB',
      )
      await expect(state.read({ resource: SHOP, sub: '' }, 'k')).rejects.toMatchObject({
        code: 'ERR_INVALID_INPUT',
      })
      expect(await state.read(alice, 'big')).toBeUndefined()
    })

    it('100 concurrent increments in one process end at exactly 100', async () => {
      await Promise.all(
        Array.from({ length: 100 }, () => state.update(alice, 'counter', increment)),
      )
      expect(await state.read(alice, 'counter')).toBe(100)
    })

    it('100 increments from 3 processes at once end at exactly 100', async () => {
      // The row does not exist when they start: the first writers race to create it.
      const codes = await Promise.all([
        runIncrementer(database.url, 34),
        runIncrementer(database.url, 33),
        runIncrementer(database.url, 33),
      ])
      expect(codes).toEqual([0, 0, 0])
      expect(await state.read(alice, 'counter')).toBe(100)
    })

    it('keeps state across closing and reopening the database', async () => {
      await state.update(alice, 'demoMode', () => 'banned')
      await store.close()
      store = await openMigrated(database.url)
      state = createSqlUserStateStore({ store })
      expect(await state.read(alice, 'demoMode')).toBe('banned')
    })
  })
}
