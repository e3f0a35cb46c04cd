import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VaultError } from '../../src/vault/types.js'
import {
  ALICE,
  connectionsCsrf,
  connectThroughLink,
  PROVIDER,
  startVaultFixture,
  type VaultFixture,
} from './vault-fixture.js'

/** Every file of the SQLite database (the main file and its write-ahead log). */
function databaseBytes(path: string): Buffer {
  const parts = [path, `${path}-wal`].map((p) => {
    try {
      return readFileSync(p)
    } catch {
      return Buffer.alloc(0)
    }
  })
  return Buffer.concat(parts)
}

async function auditTypes(f: VaultFixture): Promise<string[]> {
  const rows = await f.deputy.deps.db
    .selectFrom('audit_events')
    .select('type')
    .orderBy('seq')
    .execute()
  return rows.map((r) => r.type)
}

describe('connected accounts (issue 12 §3): connect, seal, use, disconnect', () => {
  let f: VaultFixture
  beforeAll(async () => {
    // Access tokens live 10 minutes upstream; a test moves the stored expiry into the
    // refresh-ahead window (60 s by default) or past it instead of waiting.
    f = await startVaultFixture({ upstream: { accessTokenTtl: 600 } })
  })
  afterAll(async () => {
    await f?.close()
  })

  it('a signed-out person following a connect link is sent to sign in, and back to the link', async () => {
    const { socketBrowser } = await import('../helpers/sign-in.js')
    const stranger = socketBrowser(f.server.url)
    const link = `/connect/${PROVIDER}?scope=profile`
    const answer = await stranger.get(link)
    expect(answer.status).toBe(303)
    expect(answer.headers.get('location')).toBe(`/login?return_to=${encodeURIComponent(link)}`)
  })

  it('connects through the provider: sealed tokens, the account label, audit without tokens', async () => {
    const back = await connectThroughLink(f.browser, `/connect/${PROVIDER}`)
    expect(back.status).toBe(303)
    expect(back.headers.get('location')).toBe(`/account/connections?connected=${PROVIDER}`)
    const [connection] = await f.deputy.deps.vault.list(f.aliceId)
    expect(connection).toMatchObject({
      provider: PROVIDER,
      status: 'active',
      accountLabel: 'alice@example.com',
    })
    expect(connection?.scopes).toEqual(expect.arrayContaining(['openid', 'email']))
    expect(f.upstream.counts.authorizationCode).toBe(1)

    const page = await (await f.browser.get('/account/connections?connected=corp')).text()
    expect(page).toContain('Your Corp account is connected.')
    expect(page).toContain('alice@example.com')
    expect(page).toContain('Disconnect Corp')

    // Tokens sealed: no token value the provider issued is anywhere in the database's bytes.
    const issued = f.upstream.tokenValues('alice-sub')
    expect(issued.length).toBeGreaterThanOrEqual(2)
    const bytes = databaseBytes(f.deputy.database.url)
    for (const token of issued) expect(bytes.includes(Buffer.from(token))).toBe(false)
    // … and not in the audit chain's data either.
    const events = await f.deputy.deps.db.selectFrom('audit_events').selectAll().execute()
    const text = JSON.stringify(events)
    for (const token of issued) expect(text).not.toContain(token)
    expect(await auditTypes(f)).toContain('connection.created')
  })

  it('a sealed token moved onto another row does not open (associated data binds it)', async () => {
    const { db } = f.deputy.deps
    const row = await db.selectFrom('connections').selectAll().executeTakeFirstOrThrow()
    await db
      .updateTable('connections')
      .set({ refresh_token_sealed: row.access_token_sealed })
      .where('id', '=', row.id)
      .execute()
    const { tokenAssociatedData } = await import('../../src/vault/connections.js')
    expect(() =>
      f.deputy.deps.sealer.open(row.access_token_sealed, tokenAssociatedData(row, 'refresh_token')),
    ).toThrow()
    await db
      .updateTable('connections')
      .set({ refresh_token_sealed: row.refresh_token_sealed })
      .where('id', '=', row.id)
      .execute()
  })

  it('hands out the access token the stand-in API accepts, and records when it was used', async () => {
    const token = await f.deputy.deps.vault.accessToken(f.aliceId, PROVIDER)
    const me = await fetch(`${f.api.url}/me`, {
      headers: { authorization: `Bearer ${token.accessToken}` },
    })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ sub: 'alice-sub' })
    expect(f.upstream.counts.refresh).toBe(0)
    expect((await f.deputy.deps.vault.get(f.aliceId, PROVIDER))?.lastUsedAt).not.toBeNull()
  })

  it('a request for scopes the connection lacks is connection_required naming them', async () => {
    const err = await f.deputy.deps.vault
      .accessToken(f.aliceId, PROVIDER, { scopes: ['profile'] })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VaultError)
    expect(err).toMatchObject({
      code: 'connection_required',
      provider: PROVIDER,
      scopes: ['profile'],
    })
    // No connection at all: the same error, with the provider's default scopes.
    const none = await f.deputy.deps.vault.accessToken('nobody', PROVIDER).catch((e: unknown) => e)
    expect(none).toMatchObject({ code: 'connection_required', scopes: ['openid', 'email'] })
  })

  it('refreshes ahead of expiry (vaultRefreshAheadSeconds) and the refreshed token works', async () => {
    const { db } = f.deputy.deps
    const before = await f.deputy.deps.vault.accessToken(f.aliceId, PROVIDER)
    // Within the refresh-ahead window (60 s by default), not expired yet.
    await db
      .updateTable('connections')
      .set({ access_token_expires_at: Date.now() + 30_000 })
      .execute()
    const refreshes = f.upstream.counts.refresh
    const after = await f.deputy.deps.vault.accessToken(f.aliceId, PROVIDER)
    expect(f.upstream.counts.refresh).toBe(refreshes + 1)
    expect(after.accessToken).not.toBe(before.accessToken)
    const me = await fetch(`${f.api.url}/me`, {
      headers: { authorization: `Bearer ${after.accessToken}` },
    })
    expect(me.status).toBe(200)
    // Fresh again: the next ask is served from the vault, not the provider.
    await f.deputy.deps.vault.accessToken(f.aliceId, PROVIDER)
    expect(f.upstream.counts.refresh).toBe(refreshes + 1)
    expect(await auditTypes(f)).toContain('connection.refreshed')
  })

  it('a transient provider failure backs off, uses the old token while valid, then succeeds', async () => {
    const { db } = f.deputy.deps
    const vault = f.deputy.deps.vault
    const expire = (at: number) =>
      db.updateTable('connections').set({ access_token_expires_at: at }).execute()
    // Still valid for 30 s: a failed refresh hands out the old token.
    await expire(f.clock.now().getTime() + 30_000)
    const old = await db.selectFrom('connections').select('token_version').executeTakeFirstOrThrow()
    f.upstream.failTokenRequests(1)
    const injected = f.upstream.counts.injected
    const kept = await vault.accessToken(f.aliceId, PROVIDER)
    expect(f.upstream.counts.injected).toBe(injected + 1)
    expect(kept.accessToken).toBeTruthy()
    let row = await db.selectFrom('connections').selectAll().executeTakeFirstOrThrow()
    expect(row.refresh_failures).toBe(1)
    expect(row.token_version).toBe(old.token_version)
    expect(Number(row.refresh_not_before)).toBeGreaterThan(f.clock.now().getTime())

    // Expired now, and within the back-off: provider_unavailable without asking the provider.
    await expire(f.clock.now().getTime() - 1000)
    const tokenRequests = f.upstream.counts.token
    const refused = await vault.accessToken(f.aliceId, PROVIDER).catch((e: unknown) => e)
    expect(refused).toMatchObject({ code: 'provider_unavailable' })
    expect(f.upstream.counts.token).toBe(tokenRequests)

    // A second failure doubles the back-off.
    f.clock.advance(1_001)
    f.upstream.failTokenRequests(1)
    await vault.accessToken(f.aliceId, PROVIDER).catch(() => {})
    row = await db.selectFrom('connections').selectAll().executeTakeFirstOrThrow()
    expect(row.refresh_failures).toBe(2)
    const wait = Number(row.refresh_not_before) - f.clock.now().getTime()
    expect(wait).toBeGreaterThan(1_000)
    expect(wait).toBeLessThanOrEqual(2_000)

    // After the back-off: refreshed, failures cleared.
    f.clock.advance(2_001)
    const refreshes = f.upstream.counts.refresh
    const fresh = await vault.accessToken(f.aliceId, PROVIDER)
    expect(f.upstream.counts.refresh).toBe(refreshes + 1)
    row = await db.selectFrom('connections').selectAll().executeTakeFirstOrThrow()
    expect(row).toMatchObject({ refresh_failures: 0, refresh_not_before: null })
    const me = await fetch(`${f.api.url}/me`, {
      headers: { authorization: `Bearer ${fresh.accessToken}` },
    })
    expect(me.status).toBe(200)
  })

  it('a refresh token the provider revoked marks the connection needs_reconnect; reconnecting clears it', async () => {
    const { db } = f.deputy.deps
    const vault = f.deputy.deps.vault
    f.upstream.revokeGrants('alice-sub')
    await db
      .updateTable('connections')
      .set({ access_token_expires_at: f.clock.now().getTime() - 1000 })
      .execute()
    const err = await vault.accessToken(f.aliceId, PROVIDER).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'connection_required', provider: PROVIDER })
    expect((await vault.get(f.aliceId, PROVIDER))?.status).toBe('needs_reconnect')
    expect(await auditTypes(f)).toContain('connection.needs_reconnect')
    // Asked again: no further provider call, the same answer.
    const rejected = f.upstream.counts.refreshRejected
    await expect(vault.accessToken(f.aliceId, PROVIDER)).rejects.toMatchObject({
      code: 'connection_required',
    })
    expect(f.upstream.counts.refreshRejected).toBe(rejected)
    const page = await (await f.browser.get('/account/connections')).text()
    expect(page).toContain('Reconnect Corp')

    const back = await connectThroughLink(f.browser, `/connect/${PROVIDER}`)
    expect(back.status).toBe(303)
    expect((await vault.get(f.aliceId, PROVIDER))?.status).toBe('active')
    const token = await vault.accessToken(f.aliceId, PROVIDER)
    const me = await fetch(`${f.api.url}/me`, {
      headers: { authorization: `Bearer ${token.accessToken}` },
    })
    expect(me.status).toBe(200)
  })

  it('disconnect needs the session CSRF token', async () => {
    const refused = await f.browser.post('/account/connections/disconnect', {
      csrf_token: 'not-the-token',
      provider: PROVIDER,
    })
    expect(refused.status).toBe(403)
    expect(await f.deputy.deps.vault.get(f.aliceId, PROVIDER)).not.toBeNull()
  })

  it('disconnect revokes upstream, then deletes, and audits whether upstream revoked', async () => {
    const revocations = f.upstream.counts.revocation
    expect(f.upstream.live('alice-sub').refreshTokens).toBeGreaterThan(0)
    const answer = await f.browser.post('/account/connections/disconnect', {
      csrf_token: await connectionsCsrf(f.browser),
      provider: PROVIDER,
    })
    expect(answer.status).toBe(303)
    expect(answer.headers.get('location')).toBe(`/account/connections?disconnected=${PROVIDER}`)
    expect(f.upstream.counts.revocation).toBeGreaterThan(revocations)
    expect(f.upstream.live('alice-sub').refreshTokens).toBe(0)
    expect(await f.deputy.deps.vault.get(f.aliceId, PROVIDER)).toBeNull()
    const removed = await f.deputy.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', 'connection.removed')
      .executeTakeFirstOrThrow()
    expect(JSON.parse(removed.data)).toMatchObject({ provider: PROVIDER, revokedUpstream: true })
    void ALICE
  })
})
