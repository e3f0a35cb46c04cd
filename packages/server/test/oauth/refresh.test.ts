import { decodeJwt } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sha256 } from '../../src/lib/random.js'
import type { Client } from '../../src/oauth/clients.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import {
  ADMIN,
  auditOf,
  basic,
  createWorld,
  errorOf,
  introspect,
  issueCode,
  OTHER_RESOURCE,
  postForm,
  REDIRECT,
  RESOURCE,
  redeem,
  refresh,
  startGrant,
  type Tokens,
  tokensOf,
  type World,
} from './token-helpers.js'

describe('refresh_token grant (RFC 6749 §6, RFC 9700 §4.14.2)', () => {
  let world: World
  beforeEach(async () => {
    world = await createWorld()
  })
  afterEach(() => world.deputy.dispose())

  it('rotates the refresh token on every use and issues a fresh access token for the grant', async () => {
    const first = await startGrant(world)
    const second = await tokensOf(await refresh(world, first.refresh_token))
    expect(second.refresh_token).not.toBe(first.refresh_token)
    expect(second.scope).toBe(first.scope)
    const claims = decodeJwt(second.access_token)
    expect(claims).toMatchObject({ aud: RESOURCE, sub: world.alice.id, grant_id: first.grantId })
    expect(claims.favorite_song).toBe('Bohemian Rhapsody')
    const third = await tokensOf(await refresh(world, second.refresh_token))
    expect(third.refresh_token).not.toBe(second.refresh_token)
  })

  it('stores refresh tokens only as hashes', async () => {
    const first = await startGrant(world)
    const rows = await world.deputy.deps.db.selectFrom('refresh_tokens').selectAll().execute()
    expect(JSON.stringify(rows)).not.toContain(first.refresh_token)
  })

  it('revokes the whole family when a rotated token comes back after the grace', async () => {
    const first = await startGrant(world)
    const second = await tokensOf(await refresh(world, first.refresh_token))
    world.clock.advance(world.deputy.config.refreshTokenReuseGraceSeconds + 1)

    const reuse = await refresh(world, first.refresh_token)
    expect(reuse.status).toBe(400)
    expect(await errorOf(reuse)).toBe('invalid_grant')
    // The legitimate successor dies with the family, and so do the access tokens.
    expect(await errorOf(await refresh(world, second.refresh_token))).toBe('invalid_grant')
    expect(await introspect(world, second.access_token)).toEqual({ active: false })
    expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(false)
    const [revoked] = await auditOf(world, 'grant.revoked')
    expect(revoked?.reason).toBe('refresh-token-reuse')
  })

  it('within the grace, a retry after the successor was used is reuse and revokes the family', async () => {
    const first = await startGrant(world)
    const second = await tokensOf(await refresh(world, first.refresh_token))
    const third = await tokensOf(await refresh(world, second.refresh_token))
    expect(await errorOf(await refresh(world, first.refresh_token))).toBe('invalid_grant')
    expect(await errorOf(await refresh(world, third.refresh_token))).toBe('invalid_grant')
    expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(false)
  })

  it('may narrow the scope for one access token; the grant keeps its scope', async () => {
    const first = await startGrant(world)
    const narrowed = await tokensOf(
      await refresh(world, first.refresh_token, { scope: 'tools:read' }),
    )
    expect(narrowed.scope).toBe('tools:read')
    expect(decodeJwt(narrowed.access_token).scope).toBe('tools:read')
    const next = await tokensOf(await refresh(world, narrowed.refresh_token))
    expect(next.scope).toBe(first.scope)
  })

  it('refuses a wider scope with invalid_scope and leaves the token usable', async () => {
    const { code } = await issueCode(world, { scopes: ['tools:read'] })
    const first = await tokensOf(await redeem(world, code))
    const wider = await refresh(world, first.refresh_token, { scope: 'tools:read tools:write' })
    expect(wider.status).toBe(400)
    expect(await errorOf(wider)).toBe('invalid_scope')
    await tokensOf(await refresh(world, first.refresh_token))
  })

  it('refuses another resource with invalid_target and leaves the token usable', async () => {
    const first = await startGrant(world)
    const other = await refresh(world, first.refresh_token, { resource: OTHER_RESOURCE })
    expect(other.status).toBe(400)
    expect(await errorOf(other)).toBe('invalid_target')
    await tokensOf(await refresh(world, first.refresh_token, { resource: RESOURCE }))
  })

  it("refuses another client's refresh token with invalid_grant and leaves it to its owner", async () => {
    const first = await startGrant(world)
    const stolen = await refresh(world, first.refresh_token, {}, world.otherApp)
    expect(await errorOf(stolen)).toBe('invalid_grant')
    await tokensOf(await refresh(world, first.refresh_token))
  })

  it('refuses an expired refresh token', async () => {
    const first = await startGrant(world)
    world.clock.advance(world.deputy.config.refreshTokenTtlSeconds + 1)
    expect(await errorOf(await refresh(world, first.refresh_token))).toBe('invalid_grant')
  })

  it('refuses an unknown or truncated refresh token', async () => {
    const first = await startGrant(world)
    expect(await errorOf(await refresh(world, 'x'.repeat(43)))).toBe('invalid_grant')
    expect(await errorOf(await refresh(world, first.refresh_token.slice(0, -1)))).toBe(
      'invalid_grant',
    )
  })

  it('refuses to refresh for a disabled person', async () => {
    const first = await startGrant(world)
    await world.deputy.deps.users.setStatus('alice@example.com', 'disabled', ADMIN)
    expect(await errorOf(await refresh(world, first.refresh_token))).toBe('invalid_grant')
  })
})

// Issue 3 §9: concurrent refreshes of one token, on each database: the uses run one after the
// other, and of the successors handed out exactly one keeps working.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`refresh rotation race (${dialect.name})`, () => {
    let database: TestDatabase
    let world: World
    beforeEach(async () => {
      database = await dialect.create()
      world = await createWorld({ database })
    })
    afterEach(() => world.deputy.dispose())

    it('a confidential client: concurrent refreshes of one token leave exactly one live successor, the one issued last', async () => {
      const created = await world.deputy.deps.clients.register(
        { name: 'Web agent', redirectUris: [REDIRECT] },
        ADMIN,
      )
      const auth = basic(created.client.clientId, created.clientSecret as string)
      const as = (token: string) =>
        postForm(world, '/token', { grant_type: 'refresh_token', refresh_token: token }, auth)
      for (let round = 0; round < 3; round++) {
        const first = await startGrant(world, {
          client: created.client,
          secret: created.clientSecret as string,
        })
        const { grantId } = first
        const responses = await Promise.all(
          Array.from({ length: 4 }, () => as(first.refresh_token)),
        )
        const successors: string[] = []
        for (const r of responses) {
          if (r.status === 200) successors.push(((await r.json()) as Tokens).refresh_token)
          else expect(await errorOf(r)).toBe('invalid_grant')
        }
        expect(successors.length).toBeGreaterThanOrEqual(1)
        const live = await world.deputy.deps.db
          .selectFrom('refresh_tokens')
          .select('token_hash')
          .where('grant_id', '=', grantId)
          .where('rotated_at', 'is', null)
          .execute()
        expect(live).toHaveLength(1)
        const current = successors.find((t) => sha256(t) === live[0]?.token_hash)
        expect(current).toBeDefined()
        await tokensOf(await as(current as string))
        expect(await world.deputy.deps.grants.isActive(grantId)).toBe(true)
      }
    })

    it('a public client: concurrent refreshes of one token are reuse and end the family', async () => {
      const first = await startGrant(world)
      const responses = await Promise.all(
        Array.from({ length: 4 }, () => refresh(world, first.refresh_token)),
      )
      const successors: string[] = []
      for (const r of responses) {
        if (r.status === 200) successors.push(((await r.json()) as Tokens).refresh_token)
        else expect(await errorOf(r)).toBe('invalid_grant')
      }
      expect(successors).toHaveLength(1)
      expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(false)
      expect(await errorOf(await refresh(world, successors[0] as string))).toBe('invalid_grant')
    })

    it('after the grace, a concurrent reuse revokes the family whatever the order', async () => {
      const first = await startGrant(world)
      const second = await tokensOf(await refresh(world, first.refresh_token))
      world.clock.advance(world.deputy.config.refreshTokenReuseGraceSeconds + 1)
      const [a, b] = await Promise.all([
        refresh(world, first.refresh_token),
        refresh(world, second.refresh_token),
      ])
      // Whichever ran first, the family is revoked and no token of it works any more.
      expect(a.status).toBe(400)
      expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(false)
      if (b.status === 200) {
        const late = (await b.json()) as Tokens
        expect(await errorOf(await refresh(world, late.refresh_token))).toBe('invalid_grant')
        expect(await introspect(world, late.access_token)).toEqual({ active: false })
      }
    })
  })
}

// Issue 9 §5: a rotated refresh token presented again within the grace deleted its successor and
// issued a new one, and the deleted successor then read as unknown, not as reuse: whoever stole a
// just-used token took the grant over while its owner was quietly locked out.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `refresh grace cannot be used for a takeover (${dialect.name})`,
    () => {
      let database: TestDatabase
      let world: World
      beforeEach(async () => {
        database = await dialect.create()
        world = await createWorld({ database })
      })
      afterEach(() => world.deputy.dispose())

      it("a public client's just-used token presented again within the grace ends the family", async () => {
        const first = await startGrant(world)
        const owner = await tokensOf(await refresh(world, first.refresh_token))
        world.clock.advance(1)
        // Anyone can send a public client's client_id: the thief is refused...
        const thief = await refresh(world, first.refresh_token)
        expect(thief.status).toBe(400)
        expect(await errorOf(thief)).toBe('invalid_grant')
        // ...and the family ends, the owner's successor and access token with it.
        expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(false)
        expect(await errorOf(await refresh(world, owner.refresh_token))).toBe('invalid_grant')
        expect(await introspect(world, owner.access_token)).toEqual({ active: false })
        const [revoked] = await auditOf(world, 'grant.revoked')
        expect(revoked?.reason).toBe('refresh-token-reuse')
      })

      describe('a confidential client', () => {
        let web: { client: Client; secret: string }
        beforeEach(async () => {
          const created = await world.deputy.deps.clients.register(
            { name: 'Web agent', redirectUris: [REDIRECT] },
            ADMIN,
          )
          web = { client: created.client, secret: created.clientSecret as string }
        })
        const as = (token: string) =>
          postForm(
            world,
            '/token',
            { grant_type: 'refresh_token', refresh_token: token },
            basic(web.client.clientId, web.secret),
          )
        const startWeb = () => startGrant(world, { client: web.client, secret: web.secret })

        it('retrying a lost response within the grace gets a fresh successor; the one it supersedes ends the family when it comes back', async () => {
          const first = await startWeb()
          const lost = await tokensOf(await as(first.refresh_token))
          world.clock.advance(world.deputy.config.refreshTokenReuseGraceSeconds - 1)
          const retried = await tokensOf(await as(first.refresh_token))
          expect(retried.refresh_token).not.toBe(lost.refresh_token)
          const issued = await auditOf(world, 'token.issued')
          expect(issued.some((e) => e.data.retriedWithinGrace === true)).toBe(true)
          // Whoever holds the superseded successor is found out: reuse, the family ends.
          expect(await errorOf(await as(lost.refresh_token))).toBe('invalid_grant')
          expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(false)
          expect(await errorOf(await as(retried.refresh_token))).toBe('invalid_grant')
        })

        it('another client presenting its token within the grace gets nothing and changes nothing', async () => {
          const first = await startWeb()
          const next = await tokensOf(await as(first.refresh_token))
          const stranger = await refresh(world, first.refresh_token, {}, world.otherApp)
          expect(await errorOf(stranger)).toBe('invalid_grant')
          expect(await world.deputy.deps.grants.isActive(first.grantId)).toBe(true)
          await tokensOf(await as(next.refresh_token))
        })
      })
    },
  )
}
