import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sha256 } from '../../src/lib/random.js'
import { sweepExpiredRows } from '../../src/maintenance/sweep.js'
import { PROVIDER_FLOW_TTL_MS } from '../../src/providers/flows.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { manualClock } from '../oauth/token-helpers.js'

// Issue 12: a redirect to a provider carries `state` (RFC 6749 §10.12), a PKCE verifier
// (RFC 7636) and a nonce (OIDC Core §3.1.2.1); the flow is kept by the digest of its state, its
// secrets sealed, and taken back once.

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`provider flows (${dialect.name})`, () => {
    let deputy: TestDeputy
    let clock: ReturnType<typeof manualClock>
    beforeEach(async () => {
      clock = manualClock()
      deputy = await startTestDeputy({ clock, database: await dialect.create() })
      const now = clock.now().getTime()
      for (const name of ['corp', 'other']) {
        await deputy.deps.db
          .insertInto('providers')
          .values({
            name,
            type: 'oidc',
            display_name: name,
            client_id: 'deputy',
            client_secret_sealed: null,
            issuer: 'http://127.0.0.1:1/',
            endpoints: '{}',
            uses: '["sign-in","connect"]',
            scopes: '["openid"]',
            default_roles: '[]',
            allowed_clients: '[]',
            status: 'active',
            created_at: now,
            updated_at: now,
          })
          .execute()
      }
    })
    afterEach(() => deputy.dispose())

    it('stores only the digest of the state and sealed secrets, and gives them back once', async () => {
      const flows = deputy.deps.providerFlows
      const begun = await flows.begin('sign-in', 'corp', {
        scopes: ['openid', 'email'],
        returnTo: '/account',
      })
      expect(begun.state).not.toBe(begun.codeVerifier)
      expect(begun.codeVerifier.length).toBeGreaterThanOrEqual(43)
      const row = await deputy.deps.db
        .selectFrom('provider_flows')
        .selectAll()
        .executeTakeFirstOrThrow()
      expect(row.state_hash).toBe(sha256(begun.state))
      const stored = JSON.stringify(row)
      for (const secret of [begun.state, begun.codeVerifier, begun.nonce])
        expect(stored).not.toContain(secret)

      const taken = await flows.take(begun.state, { kind: 'sign-in', provider: 'corp' })
      expect(taken).toEqual({
        status: 'ok',
        flow: {
          kind: 'sign-in',
          provider: 'corp',
          userId: null,
          clientId: null,
          scopes: ['openid', 'email'],
          returnTo: '/account',
          codeVerifier: begun.codeVerifier,
          nonce: begun.nonce,
          createdAt: clock.now().getTime(),
        },
      })
      // A replay of the same state finds nothing.
      expect(await flows.take(begun.state)).toEqual({ status: 'unknown' })
      expect(await flows.take('never-begun')).toEqual({ status: 'unknown' })
      expect(await flows.take('')).toEqual({ status: 'unknown' })
    })

    it('of concurrent takes of one state exactly one wins', async () => {
      const flows = deputy.deps.providerFlows
      const { state } = await flows.begin('sign-in', 'corp', { scopes: [] })
      const results = await Promise.all(Array.from({ length: 8 }, () => flows.take(state)))
      expect(results.filter((r) => r.status === 'ok')).toHaveLength(1)
      expect(results.filter((r) => r.status === 'unknown')).toHaveLength(7)
    })

    it('a state begun for another kind or provider is not taken', async () => {
      const flows = deputy.deps.providerFlows
      const { state } = await flows.begin('connect', 'corp', { scopes: ['repo'] })
      expect(await flows.take(state, { kind: 'sign-in' })).toEqual({ status: 'unknown' })
      expect(await flows.take(state, { provider: 'other' })).toEqual({ status: 'unknown' })
      expect((await flows.take(state, { kind: 'connect', provider: 'corp' })).status).toBe('ok')
    })

    it('secrets copied onto another flow do not open', async () => {
      const flows = deputy.deps.providerFlows
      const first = await flows.begin('sign-in', 'corp', { scopes: [] })
      const second = await flows.begin('sign-in', 'corp', { scopes: [] })
      const donor = await deputy.deps.db
        .selectFrom('provider_flows')
        .select('secrets_sealed')
        .where('state_hash', '=', sha256(first.state))
        .executeTakeFirstOrThrow()
      await deputy.deps.db
        .updateTable('provider_flows')
        .set({ secrets_sealed: donor.secrets_sealed })
        .where('state_hash', '=', sha256(second.state))
        .execute()
      await expect(flows.take(second.state)).rejects.toMatchObject({ code: 'ERR_DECRYPT_FAILED' })
    })

    it('an expired flow is refused, and the sweep removes abandoned ones', async () => {
      const flows = deputy.deps.providerFlows
      const late = await flows.begin('sign-in', 'corp', { scopes: [] })
      await flows.begin('connect', 'corp', { scopes: [] })
      clock.advance(PROVIDER_FLOW_TTL_MS / 1000)
      expect(await flows.take(late.state)).toEqual({ status: 'expired' })
      const fresh = await flows.begin('sign-in', 'corp', { scopes: [] })
      clock.advance(1)
      const report = await sweepExpiredRows(deputy.deps)
      expect(report.providerFlows).toBe(1)
      expect((await flows.take(fresh.state)).status).toBe('ok')
    })
  })
}
