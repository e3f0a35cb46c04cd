import type { ToolCallEvent } from '@deputy/mcp'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import { tailAudit } from '../../src/audit/query.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { chainAudit, jsonLineAudit } from '../../src/gateway/audit.js'
import { systemClock } from '../../src/lib/clock.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { createSqliteDatabase, type TestDatabase } from '../helpers/databases.js'

const event: ToolCallEvent = {
  type: 'tool.refused',
  callId: 'call-1',
  at: new Date('2026-01-02T03:04:05Z'),
  resource: 'http://localhost:8090/mcp',
  sub: 'alice',
  clientId: 'agent-1',
  actor: undefined,
  tokenId: 'jti-1',
  tool: 'delete_everything',
  argumentsDigest: 'sha-256:abc',
  decision: 'insufficient_scope',
  reason: 'scope',
  outcome: 'refused',
}

let db: TestDatabase | undefined
let store: Store | undefined
afterEach(async () => {
  await store?.close()
  await db?.dispose()
})

describe('gateway audit sinks', () => {
  it("with --db, appends each tool call to Deputy's audit chain, which still verifies", async () => {
    db = await createSqliteDatabase()
    store = openStore(db.url)
    await migrateToLatest(store)
    await chainAudit(createAuditLog(store, systemClock))(event)
    const [record] = await tailAudit(store, { limit: 1, type: 'tool.refused' })
    expect(record).toMatchObject({
      type: 'tool.refused',
      actor: { type: 'client', id: 'agent-1' },
      onBehalfOf: { type: 'user', id: 'alice' },
      target: { type: 'tool', id: 'http://localhost:8090/mcp#delete_everything' },
      decision: 'insufficient-scope',
      reason: 'scope',
    })
    expect((await verifyAuditChain(store)).ok).toBe(true)
  })

  it('a call made with a delegated token (RFC 8693 act) is recorded with the whole chain, current actor first', async () => {
    db = await createSqliteDatabase()
    store = openStore(db.url)
    await migrateToLatest(store)
    const delegated: ToolCallEvent = {
      ...event,
      clientId: 'agent-c',
      actor: {
        sub: 'agent-c',
        client_id: 'agent-c',
        act: { sub: 'agent-b', client_id: 'agent-b' },
      },
    }
    await chainAudit(createAuditLog(store, systemClock))(delegated)
    const [record] = await tailAudit(store, { limit: 1, type: 'tool.refused' })
    expect(record?.delegationChain).toEqual([
      { type: 'client', id: 'agent-c' },
      { type: 'client', id: 'agent-b' },
    ])
    const lines: string[] = []
    await jsonLineAudit((line) => lines.push(line))(delegated)
    expect(JSON.parse(lines[0] as string).actor.act).toEqual({
      sub: 'agent-b',
      client_id: 'agent-b',
    })
  })

  it('without --db, writes each tool call as one JSON line', async () => {
    const lines: string[] = []
    await jsonLineAudit((line) => lines.push(line))(event)
    expect(lines).toHaveLength(1)
    expect(lines[0]?.endsWith('\n')).toBe(true)
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      type: 'tool.refused',
      at: '2026-01-02T03:04:05.000Z',
      sub: 'alice',
      clientId: 'agent-1',
      jti: 'jti-1',
      tool: 'delete_everything',
      decision: 'insufficient_scope',
      outcome: 'refused',
    })
  })
})
