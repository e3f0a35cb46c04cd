import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decideApproval } from '../../src/approvals/decide.js'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { sweepExpiredRows } from '../../src/maintenance/sweep.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { ADMIN, auditOf, createWorld, RESOURCE, type World } from '../oauth/token-helpers.js'

// Issue 11 §5: `approval.expired` — an undecided request past its expiry is recorded once, by the
// sweep, before anything is deleted; decided and expired requests are kept for
// `approvalRetentionDays` after their expiry (the inbox history, `deputy approvals`), then go.

const CIBA = 'urn:openid:params:grant-type:ciba'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `approval.expired and retention (${dialect.name})`,
    () => {
      let world: World
      let clientId: string

      beforeEach(async () => {
        world = await createWorld({
          database: await dialect.create(),
          config: { approvalRetentionDays: 2, sweepIntervalSeconds: 0 },
        })
        clientId = (
          await world.deputy.deps.clients.register({ name: 'Agent', grantTypes: [CIBA] }, ADMIN)
        ).client.clientId
      })
      afterEach(() => world.deputy.dispose())

      async function ask(expiresInSeconds: number) {
        const created = await world.deputy.deps.approvals.create(
          {
            clientId,
            userId: world.alice.id,
            resource: RESOURCE,
            scopes: ['openid'],
            authorizationDetails: [
              { type: 'tool_call', server: RESOURCE, tool: 'buy', arguments: { n: 1 } },
            ],
            bindingMessage: null,
            expiresInSeconds,
            deliveryMode: 'poll',
            notificationToken: null,
          },
          { intervalSeconds: 5, maxPending: 100 },
        )
        return created?.request.id as string
      }

      const decide = (id: string, decision: 'approved' | 'denied') =>
        decideApproval(world.deputy.deps, {
          id,
          decision,
          actor: { type: 'user', id: world.alice.id },
          shownDigest: null,
        })

      const rows = () =>
        world.deputy.deps.db.selectFrom('approval_requests').select('id').orderBy('id').execute()

      it('records approval.expired once for each undecided request past its expiry, and for no other', async () => {
        const lapsing = await ask(60)
        const decided = await ask(60)
        const later = await ask(3600)
        await decide(decided, 'approved')
        expect((await sweepExpiredRows(world.deputy.deps)).expiredApprovals).toBe(0)

        world.clock.advance(61)
        const report = await sweepExpiredRows(world.deputy.deps)
        expect(report.expiredApprovals).toBe(1)
        // Nothing was deleted: every request is within its retention.
        expect(report.approvalRequests).toBe(0)
        const expired = await auditOf(world, 'approval.expired')
        expect(expired).toHaveLength(1)
        const [record] = expired
        expect(JSON.parse(record?.actor as string)).toEqual({
          type: 'system',
          id: 'deputy',
          label: 'sweeper',
        })
        expect(JSON.parse(record?.on_behalf_of as string)).toEqual({
          type: 'user',
          id: world.alice.id,
        })
        expect(JSON.parse(record?.target as string)).toEqual({ type: 'approval', id: lapsing })
        expect(record?.data).toMatchObject({
          client: clientId,
          resource: RESOURCE,
          types: ['tool_call'],
        })
        // Once: further sweeps record nothing more, and a late decision does not land.
        expect((await sweepExpiredRows(world.deputy.deps)).expiredApprovals).toBe(0)
        expect((await decide(lapsing, 'approved')).status).toBe('expired')
        expect(await auditOf(world, 'approval.expired')).toHaveLength(1)
        expect(await auditOf(world, 'approval.granted')).toHaveLength(1)
        expect((await world.deputy.deps.approvals.byId(later))?.status).toBe('pending')
        expect((await verifyAuditChain(world.deputy.deps.store)).ok).toBe(true)
      })

      it('of several sweeps at once, exactly one records each expiry', async () => {
        const ids = await Promise.all([1, 2, 3, 4, 5].map(() => ask(30)))
        world.clock.advance(31)
        const reports = await Promise.all([1, 2, 3].map(() => sweepExpiredRows(world.deputy.deps)))
        expect(reports.reduce((n, r) => n + r.expiredApprovals, 0)).toBe(5)
        const expired = await auditOf(world, 'approval.expired')
        expect(expired.map((e) => JSON.parse(e.target as string).id).sort()).toEqual(
          [...ids].sort(),
        )
      })

      it('a claim that never became a record is taken again later', async () => {
        const id = await ask(30)
        world.clock.advance(31)
        // A sweeper claimed it and died before appending.
        await world.deputy.deps.db
          .updateTable('approval_requests')
          .set({ expiry_claimed_at: world.clock.now().getTime() })
          .where('id', '=', id)
          .execute()
        expect((await sweepExpiredRows(world.deputy.deps)).expiredApprovals).toBe(0)
        world.clock.advance(11 * 60)
        expect((await sweepExpiredRows(world.deputy.deps)).expiredApprovals).toBe(1)
        expect(await auditOf(world, 'approval.expired')).toHaveLength(1)
      })

      it('keeps requests for approvalRetentionDays after their expiry, then deletes them (their records stay)', async () => {
        const approved = await ask(60)
        const denied = await ask(60)
        await ask(60)
        await decide(approved, 'approved')
        await decide(denied, 'denied')
        world.clock.advance(61 + 86_400)
        expect(await sweepExpiredRows(world.deputy.deps)).toMatchObject({
          expiredApprovals: 1,
          approvalRequests: 0,
        })
        expect(await rows()).toHaveLength(3)
        const fresh = await ask(5 * 86_400)
        world.clock.advance(86_400 + 1)
        const report = await sweepExpiredRows(world.deputy.deps)
        expect(report.approvalRequests).toBe(3)
        expect((await rows()).map((r) => r.id)).toEqual([fresh])
        const swept = await auditOf(world, 'store.swept')
        expect(swept.at(-1)?.data).toMatchObject({ approvalRequests: 3 })
        expect(await auditOf(world, 'approval.expired')).toHaveLength(1)
        expect(await auditOf(world, 'approval.granted')).toHaveLength(1)
        expect((await verifyAuditChain(world.deputy.deps.store)).ok).toBe(true)
        // Deleting an expired request never comes before its record: an unrecorded one is kept.
        world.clock.advance(3 * 86_400)
        await world.deputy.deps.db
          .updateTable('approval_requests')
          .set({ expiry_claimed_at: world.clock.now().getTime() })
          .where('id', '=', fresh)
          .execute()
        expect((await sweepExpiredRows(world.deputy.deps)).approvalRequests).toBe(0)
        expect((await rows()).map((r) => r.id)).toEqual([fresh])
      })
    },
  )
}
