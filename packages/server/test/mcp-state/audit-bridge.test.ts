import { jwtVerifier, protectMcpServer } from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuditLog } from '../../src/audit/chain.js'
import { tailAudit } from '../../src/audit/query.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { systemClock } from '../../src/lib/clock.js'
import { toolCallAuditor } from '../../src/mcp-state/audit-bridge.js'
import { openStore, type Store } from '../../src/store/db.js'
import { migrateToLatest } from '../../src/store/migrate.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'

// A server protected by @deputy/mcp inside Deputy records through toolCallAuditor into the real
// audit chain: an append that fails must reach the kit, which then does not run the tool.

const ISSUER = 'https://auth.example'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/** Refuses every `tool.allowed` insert in the database, as a full disk would refuse any. */
async function refuseDecisionRecords(store: Store): Promise<void> {
  if (store.dialect === 'sqlite') {
    await sql`CREATE TRIGGER refuse_allowed BEFORE INSERT ON audit_events WHEN NEW.type = 'tool.allowed' BEGIN SELECT RAISE(ABORT, 'audit storage refused the record'); END`.execute(
      store.db,
    )
    return
  }
  await sql`CREATE FUNCTION refuse_allowed() RETURNS trigger AS $$ BEGIN IF NEW.type = 'tool.allowed' THEN RAISE EXCEPTION 'audit storage refused the record'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`.execute(
    store.db,
  )
  await sql`CREATE TRIGGER refuse_allowed BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_allowed()`.execute(
    store.db,
  )
}

/** A kit-protected MCP server on 127.0.0.1 auditing into `store`, and a client for it. */
async function serveKit(store: Store) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }
  const ran: string[] = []
  const errors: Error[] = []
  let kit: ReturnType<typeof protectMcpServer> | undefined
  const server: ServerType = await new Promise((resolve) => {
    const s = serve(
      {
        fetch: (request) => (kit as NonNullable<typeof kit>).fetch(request),
        port: 0,
        hostname: '127.0.0.1',
      },
      () => resolve(s),
    )
  })
  const address = server.address()
  const resource = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`
  kit = protectMcpServer({
    resource,
    authorizationServers: [ISSUER],
    verifier: jwtVerifier({ issuer: ISSUER, audience: resource, jwks: { keys: [jwk] } }),
    server: { name: 'bridge-test', version: '1.0.0' },
    audit: toolCallAuditor({ audit: createAuditLog(store, systemClock) }),
    onError: (error) => errors.push(error),
  })
  kit.tool('transfer', {}, { description: 'Moves money' }, () => {
    ran.push('transfer')
    return { content: [{ type: 'text', text: 'moved' }] }
  })
  const token = await new SignJWT({ sub: 'ada', client_id: 'agent-1' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(resource)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(crypto.randomUUID())
    .sign(privateKey)
  const client = new Client({ name: 'bridge-test', version: '1.0.0' })
  await client.connect(
    new StreamableHTTPClientTransport(new URL(resource), {
      authProvider: { token: async () => token },
    }),
  )
  closers.push(async () => {
    await client.close()
    await kit?.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { client, ran, errors }
}

describe.each(DIALECTS)('toolCallAuditor on $name', ({ name, create }) => {
  let db: TestDatabase | undefined
  let store: Store | undefined
  afterEach(async () => {
    await store?.close()
    await db?.dispose()
    store = undefined
    db = undefined
  })

  async function open(): Promise<Store> {
    db = await create()
    store = openStore(db.url)
    await migrateToLatest(store)
    return store
  }

  it.skipIf(skipDialect(name))(
    'chains the decision before the outcome, one callId linking them',
    async () => {
      const store = await open()
      const { client, ran } = await serveKit(store)
      const result = await client.callTool({ name: 'transfer', arguments: { amount: 5 } })
      expect(result.isError).toBeFalsy()
      expect(ran).toEqual(['transfer'])
      const records = await tailAudit(store, { limit: 10 })
      expect(records.map((record) => [record.type, record.decision, record.data.outcome])).toEqual([
        ['tool.allowed', 'allow', undefined],
        ['tool.called', 'allow', 'success'],
      ])
      expect(records[0]?.data.callId).toBe(records[1]?.data.callId)
      expect(records[0]).toMatchObject({
        actor: { type: 'client', id: 'agent-1' },
        onBehalfOf: { type: 'user', id: 'ada' },
      })
      expect((await verifyAuditChain(store)).ok).toBe(true)
    },
  )

  it.skipIf(skipDialect(name))(
    'an append that fails reaches the kit: the tool does not run and the caller is refused',
    async () => {
      const store = await open()
      await refuseDecisionRecords(store)
      const { client, ran, errors } = await serveKit(store)
      const result = await client.callTool({ name: 'transfer', arguments: { amount: 5 } })
      expect(result.isError).toBe(true)
      expect(JSON.stringify(result.content)).toContain('it could not be recorded')
      expect(ran).toEqual([])
      expect(errors.map((error) => error.message).join('\n')).toContain('audit storage refused')
      expect(await tailAudit(store, { limit: 10 })).toEqual([])
      expect((await verifyAuditChain(store)).ok).toBe(true)
    },
  )
})
