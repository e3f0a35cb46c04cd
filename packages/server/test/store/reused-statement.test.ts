import { afterAll, describe, expect, it } from 'vitest'
import type { AuditLog } from '../../src/audit/types.js'
import { createAuthorizationCodes } from '../../src/oauth/authorization-codes.js'
import { createGrantUse } from '../../src/oauth/grant-use.js'
import { createGrants } from '../../src/oauth/grants.js'
import { openStore } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { reusedStatement } from '../../src/store/reused-statement.js'

// store/reused-statement.ts: a hot statement is compiled once and its text reused with each
// call's parameters, but only when the parameters it was told match what Kysely compiled.
const store = openStore(':memory:')
const clock = { now: () => new Date(1_800_000_000_000) }
afterAll(() => store.close())

const reused = (q: { query: { kind: string } }) => q.query.kind === 'RawNode'

describe('reusedStatement', () => {
  it('reuses the text with each call’s parameters when their order is right', () => {
    const update = reusedStatement(
      (id: string, n: number) =>
        store.db.updateTable('grants').set({ last_used_at: n }).where('id', '=', id).compile(),
      (id, n) => [n, id],
    )
    const first = update('a', 1)
    const second = update('b', 2)
    expect(reused(first)).toBe(false)
    expect(reused(second)).toBe(true)
    expect(second.sql).toBe(first.sql)
    expect(second.parameters).toEqual([2, 'b'])
  })

  it('compiles every time when the order it was told is wrong', () => {
    const update = reusedStatement(
      (id: string, n: number) =>
        store.db.updateTable('grants').set({ last_used_at: n }).where('id', '=', id).compile(),
      (id, n) => [id, n],
    )
    update('a', 1)
    const second = update('b', 2)
    expect(reused(second)).toBe(false)
    expect(second.parameters).toEqual([2, 'b'])
  })

  it('is in use for the flow’s hot writes (their parameter lists match Kysely’s)', () => {
    const codes = createAuthorizationCodes({ store, clock })
    const grants = createGrants({ store, clock, audit: {} as AuditLog })
    const use = createGrantUse({ db: store.db, clock })
    const data = {
      grantId: 'g',
      clientId: 'c',
      userId: 'u',
      redirectUri: 'https://app.example/cb',
      codeChallenge: 'x'.repeat(43),
      resource: 'https://mcp.example',
      scopes: ['a'],
      nonce: null,
      authTime: 1,
    }
    const input = { userId: 'u', clientId: 'c', resource: 'https://mcp.example', scopes: ['a'] }
    codes.prepareIssue(data)
    codes.redemption('one')
    grants.prepare(input)
    use.statement('g1')
    expect(reused(codes.prepareIssue(data).write)).toBe(true)
    expect(reused(codes.redemption('two'))).toBe(true)
    expect(reused(grants.prepare(input).write)).toBe(true)
    expect(reused(use.statement('g2') as { query: { kind: string } })).toBe(true)
  })

  it('reads the same rows through reused reads as through Kysely', async () => {
    await migrateToLatest(store)
    const grants = createGrants({ store, clock, audit: {} as AuditLog })
    const codes = createAuthorizationCodes({ store, clock })
    for (let round = 0; round < 2; round++) {
      expect(await grants.isActive('none')).toBe(false)
      expect(await grants.detailsOf('none')).toEqual([])
      expect(await grants.rememberedScopes('u', 'c', 'r')).toBeNull()
      expect(await codes.find('none')).toEqual({ status: 'unknown' })
    }
  })
})
