import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import type { User } from '../../src/identity/users.js'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { type Client, TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import { mintIdToken } from '../../src/oauth/id-token.js'
import type { Resource } from '../../src/oauth/resources.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// RFC 8693 token exchange, delegation (issue 13 §1, docs/delegation.md): the authenticated client
// acts for the subject token's person; the token it gets keeps `sub`, names it in `act` (nested
// on every further hop, §4.1), is bound to one registered resource it may reach, no broader and
// no longer-lived than the subject token, with no refresh token. Each MUST beside its refusal.

const ADMIN: Actor = { type: 'system', id: 'test' }
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'
const R_B = 'http://127.0.0.1:9/b'
const R_C = 'http://127.0.0.1:9/c'
const R_D = 'http://127.0.0.1:9/d'
const R_E = 'http://127.0.0.1:9/e'

interface Registered {
  client: Client
  basic: string
}

type Answer = { status: number; body: Record<string, unknown> }

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `token exchange, delegation (RFC 8693 §2, §4.1, §4.4) on ${dialect.name}`,
    () => {
      let deputy: TestDeputy
      let alice: User
      const resources: Record<string, Resource> = {}
      /** The agent the person signed in to. */
      let agent: Registered
      /** B serves R_B and may act toward R_C; C serves R_C and may act toward R_D; D toward R_E. */
      let b: Registered
      let c: Registered
      let d: Registered
      /** Serves R_B, has the grant type, but no delegation rule. */
      let stranger: Registered
      /** Serves R_B and may impersonate toward R_C. */
      let stand: Registered

      const register = async (name: string, input: Record<string, unknown> = {}) => {
        const created = await deputy.deps.clients.register({ name, ...input }, ADMIN)
        return {
          client: created.client,
          basic: `Basic ${btoa(`${created.client.clientId}:${created.clientSecret}`)}`,
        }
      }
      const exchanger = (name: string, served: string[], scopes: string[] = []) =>
        register(name, {
          grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE],
          allowedResources: served,
          allowedScopes: scopes,
        })

      beforeAll(async () => {
        deputy = await startTestDeputy({ database: await dialect.create() })
        const { deps } = deputy
        for (const uri of [R_B, R_C, R_D, R_E])
          resources[uri] = await deps.resources.put(
            { uri, scopes: { read: 'Read', write: 'Write' }, claimsTemplate: ['email'] },
            ADMIN,
          )
        alice = await deps.users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)
        agent = await register('Agent', { redirectUris: ['http://127.0.0.1:7/callback'] })
        b = await exchanger('B', [R_B], ['read'])
        c = await exchanger('C', [R_C])
        d = await exchanger('D', [R_D])
        stranger = await exchanger('Stranger', [R_B, R_C])
        stand = await exchanger('Stand-in', [R_B])
        await deps.delegationRules.set(b.client.clientId, { resources: [R_C] }, ADMIN)
        await deps.delegationRules.set(c.client.clientId, { resources: [R_D] }, ADMIN)
        await deps.delegationRules.set(d.client.clientId, { resources: [R_E] }, ADMIN)
        await deps.delegationRules.set(
          stand.client.clientId,
          { resources: [R_C], impersonate: true },
          ADMIN,
        )
      }, 60_000)

      afterAll(async () => {
        await deputy?.dispose()
      })

      /** Alice's token for the agent at R_B, as /token would mint it. */
      async function personToken(
        options: {
          user?: User
          client?: Client
          resource?: string
          scopes?: string[]
          now?: Date
          mayAct?: { sub: string }
        } = {},
      ): Promise<string> {
        const deps = options.now
          ? { ...deputy.deps, clock: { now: () => options.now as Date } }
          : deputy.deps
        const minted = await mintAccessToken(deps, {
          client: options.client ?? agent.client,
          user: options.user ?? alice,
          resource: resources[options.resource ?? R_B] as Resource,
          scopes: options.scopes ?? ['read', 'write'],
          grantId: null,
          mayAct: options.mayAct,
        })
        return minted.token
      }

      async function exchange(
        as: Registered,
        fields: Record<string, string | undefined>,
      ): Promise<Answer> {
        const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE })
        for (const [name, value] of Object.entries(fields))
          if (value !== undefined) form.set(name, value)
        if (fields.subject_token !== undefined && fields.subject_token_type === undefined)
          form.set('subject_token_type', ACCESS_TOKEN_TYPE)
        const response = await deputy.app.request('/token', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: as.basic,
          },
          body: form.toString(),
        })
        expect(response.headers.get('cache-control')).toBe('no-store')
        return { status: response.status, body: (await response.json()) as Record<string, unknown> }
      }

      async function refused(answer: Promise<Answer>, error: string): Promise<Answer> {
        const result = await answer
        expect(result.body.error, JSON.stringify(result.body)).toBe(error)
        expect(result.status).toBe(400)
        expect(result.body.access_token).toBeUndefined()
        return result
      }

      it('§2.2.1: B acting for Alice gets an access token that keeps sub, names B in act, is for the resource, and has no refresh token', async () => {
        const subject = await personToken()
        const { status, body } = await exchange(b, { subject_token: subject, resource: R_C })
        expect(status).toBe(200)
        expect(body.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
        expect(body.token_type).toBe('Bearer')
        expect(body.refresh_token).toBeUndefined()
        expect(body.scope).toBe('read write')
        const claims = decodeJwt(body.access_token as string)
        const before = decodeJwt(subject)
        expect(claims.sub).toBe(alice.id)
        expect(claims.act).toEqual({ sub: b.client.clientId })
        expect(claims.aud).toBe(R_C)
        expect(claims.client_id).toBe(b.client.clientId)
        expect(claims.email).toBe('alice@example.com')
        expect(claims.exp as number).toBeLessThanOrEqual(before.exp as number)
      })

      it('§4.1: a further hop nests the earlier actor inside the current one', async () => {
        const first = await exchange(b, { subject_token: await personToken(), resource: R_C })
        const second = await exchange(c, {
          subject_token: first.body.access_token as string,
          audience: R_D,
          requested_token_type: ACCESS_TOKEN_TYPE,
        })
        expect(second.status, JSON.stringify(second.body)).toBe(200)
        const claims = decodeJwt(second.body.access_token as string)
        expect(claims.sub).toBe(alice.id)
        expect(claims.act).toEqual({ sub: c.client.clientId, act: { sub: b.client.clientId } })
        expect(claims.aud).toBe(R_D)
      })

      it('a chain longer than delegationMaxDepth is invalid_request', async () => {
        // An agent acting first (its own token, RFC 8693 §1.1): first → B → C is three actors,
        // the default limit.
        const first = await exchanger('First', [R_D])
        await deputy.deps.delegationRules.set(first.client.clientId, { resources: [R_B] }, ADMIN)
        const own = await personToken({ client: first.client, resource: R_D })
        const hop1 = await exchange(first, { subject_token: own, resource: R_B })
        expect(hop1.status, JSON.stringify(hop1.body)).toBe(200)
        const hop2 = await exchange(b, {
          subject_token: hop1.body.access_token as string,
          resource: R_C,
        })
        const hop3 = await exchange(c, {
          subject_token: hop2.body.access_token as string,
          resource: R_D,
        })
        expect(hop3.status).toBe(200)
        expect(decodeJwt(hop3.body.access_token as string).act).toEqual({
          sub: c.client.clientId,
          act: { sub: b.client.clientId, act: { sub: first.client.clientId } },
        })
        const hop4 = exchange(d, { subject_token: hop3.body.access_token as string, resource: R_E })
        const { body } = await refused(hop4, 'invalid_request')
        expect(body.error_description).toMatch(/longer than 3/)
      })

      it('the token lives no longer than the subject token', async () => {
        const ttl = deputy.config.accessTokenTtlSeconds
        const subject = await personToken({ now: new Date(Date.now() - (ttl - 60) * 1000) })
        const { body } = await exchange(b, { subject_token: subject, resource: R_C })
        expect(body.expires_in as number).toBeLessThanOrEqual(60)
        expect(decodeJwt(body.access_token as string).exp).toBeLessThanOrEqual(
          decodeJwt(subject).exp as number,
        )
      })

      it('scope: a narrower one is granted; a broader one (or one the resource does not offer) is invalid_scope', async () => {
        const subject = await personToken({ scopes: ['read'] })
        const narrower = await exchange(b, { subject_token: subject, resource: R_C, scope: 'read' })
        expect(narrower.body.scope).toBe('read')
        await refused(
          exchange(b, { subject_token: subject, resource: R_C, scope: 'read write' }),
          'invalid_scope',
        )
        await refused(
          exchange(b, { subject_token: await personToken(), resource: R_C, scope: 'admin' }),
          'invalid_scope',
        )
      })

      it('resource or audience: required, one only, registered, and one the actor may reach (else invalid_target)', async () => {
        const subject = await personToken()
        await refused(exchange(b, { subject_token: subject }), 'invalid_request')
        await refused(
          exchange(b, { subject_token: subject, resource: 'http://127.0.0.1:9/unknown' }),
          'invalid_target',
        )
        await refused(exchange(b, { subject_token: subject, resource: R_D }), 'invalid_target')
        await refused(
          exchange(b, { subject_token: subject, resource: R_C, audience: R_D }),
          'invalid_target',
        )
      })

      it('a client the operator did not allow to act (no rule, no may_act) is unauthorized_client', async () => {
        const { body } = await refused(
          exchange(stranger, { subject_token: await personToken(), resource: R_C }),
          'unauthorized_client',
        )
        expect(body.error_description).toMatch(/may not act/)
      })

      it('§4.4 may_act: names the one client that may act (toward a resource it is registered for); any other is unauthorized_client', async () => {
        const forStranger = await personToken({ mayAct: { sub: stranger.client.clientId } })
        const ok = await exchange(stranger, { subject_token: forStranger, resource: R_C })
        expect(ok.status).toBe(200)
        expect(decodeJwt(ok.body.access_token as string).act).toEqual({
          sub: stranger.client.clientId,
        })
        await refused(
          exchange(stranger, { subject_token: forStranger, resource: R_D }),
          'invalid_target',
        )
        // B's rule allows R_C, but the token says only the stranger may act.
        await refused(
          exchange(b, { subject_token: forStranger, resource: R_C }),
          'unauthorized_client',
        )
      })

      it('impersonation only where the operator allowed it: no act; an actor_token makes it delegation', async () => {
        const subject = await personToken()
        const impersonated = await exchange(stand, { subject_token: subject, resource: R_C })
        expect(impersonated.status).toBe(200)
        const claims = decodeJwt(impersonated.body.access_token as string)
        expect(claims.sub).toBe(alice.id)
        expect(claims.act).toBeUndefined()
        const own = await mintAccessToken(deputy.deps, {
          client: stand.client,
          user: null,
          resource: resources[R_B] as Resource,
          scopes: [],
          grantId: null,
        })
        const declared = await exchange(stand, {
          subject_token: subject,
          resource: R_C,
          actor_token: own.token,
          actor_token_type: ACCESS_TOKEN_TYPE,
        })
        expect(decodeJwt(declared.body.access_token as string).act).toEqual({
          sub: stand.client.clientId,
        })
        // B, allowed delegation only, never gets a token without act.
        const delegated = await exchange(b, { subject_token: subject, resource: R_C })
        expect(decodeJwt(delegated.body.access_token as string).act).toBeDefined()
      })

      it('§2.1 actor_token: must be an active token of the authenticated client itself', async () => {
        const subject = await personToken()
        const mine = await mintAccessToken(deputy.deps, {
          client: b.client,
          user: null,
          resource: resources[R_B] as Resource,
          scopes: ['read'],
          grantId: null,
        })
        const ok = await exchange(b, {
          subject_token: subject,
          resource: R_C,
          actor_token: mine.token,
          actor_token_type: ACCESS_TOKEN_TYPE,
        })
        expect(ok.status).toBe(200)
        const others = await mintAccessToken(deputy.deps, {
          client: c.client,
          user: null,
          resource: resources[R_C] as Resource,
          scopes: [],
          grantId: null,
        })
        for (const actor of [others.token, subject, 'not-a-token'])
          await refused(
            exchange(b, {
              subject_token: subject,
              resource: R_C,
              actor_token: actor,
              actor_token_type: ACCESS_TOKEN_TYPE,
            }),
            'invalid_request',
          )
        await refused(
          exchange(b, {
            subject_token: subject,
            resource: R_C,
            actor_token: mine.token,
            actor_token_type: ID_TOKEN_TYPE,
          }),
          'invalid_request',
        )
      })

      it('§2.2.2 subject token: another issuer, expired, revoked, not held, or naming no person is invalid_request', async () => {
        const { privateKey } = await generateKeyPair('ES256')
        const now = Math.floor(Date.now() / 1000)
        const forged = await new SignJWT({
          client_id: agent.client.clientId,
          scope: 'read',
          jti: 'x',
        })
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'other' })
          .setIssuer('https://other.example')
          .setSubject(alice.id)
          .setAudience(R_B)
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(privateKey)
        const expired = await personToken({ now: new Date(Date.now() - 3_600_000) })
        const revoked = await personToken()
        const revocation = await deputy.app.request('/revoke', {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: agent.basic,
          },
          body: new URLSearchParams({ token: revoked }).toString(),
        })
        expect(revocation.status).toBe(200)
        // For R_D: B neither got it nor serves R_D.
        const notHeld = await personToken({ resource: R_D })
        const machine = await mintAccessToken(deputy.deps, {
          client: b.client,
          user: null,
          resource: resources[R_B] as Resource,
          scopes: ['read'],
          grantId: null,
        })
        for (const subject of [forged, expired, revoked, notHeld, machine.token, 'x.y.z'])
          await refused(exchange(b, { subject_token: subject, resource: R_C }), 'invalid_request')
      })

      it('§2.2.2 subject token: a disabled person or a disabled client ends what it can be exchanged for', async () => {
        const bob = await deputy.deps.users.create({ email: 'bob@example.com', name: 'Bob' }, ADMIN)
        const other = await register('Other agent', { redirectUris: ['http://127.0.0.1:7/cb'] })
        const bobs = await personToken({ user: bob })
        const viaOther = await personToken({ client: other.client })
        expect((await exchange(b, { subject_token: bobs, resource: R_C })).status).toBe(200)
        expect((await exchange(b, { subject_token: viaOther, resource: R_C })).status).toBe(200)
        await deputy.deps.users.setStatus('bob@example.com', 'disabled', ADMIN)
        await deputy.deps.clients.disable(other.client.clientId, ADMIN)
        await refused(exchange(b, { subject_token: bobs, resource: R_C }), 'invalid_request')
        await refused(exchange(b, { subject_token: viaOther, resource: R_C }), 'invalid_request')
      })

      it('an ID token Deputy issued to the actor is a subject token; one for another client, or expired, is not', async () => {
        const idToken = await mintIdToken(deputy.deps, {
          clientId: b.client.clientId,
          user: alice,
          scopes: ['openid'],
          nonce: null,
          authTime: Date.now(),
        })
        const ok = await exchange(b, {
          subject_token: idToken,
          subject_token_type: ID_TOKEN_TYPE,
          resource: R_C,
        })
        expect(ok.status).toBe(200)
        // No API scope in an ID token: what the operator allowed the actor is the bound.
        expect(ok.body.scope).toBe('read')
        expect(decodeJwt(ok.body.access_token as string).act).toEqual({ sub: b.client.clientId })
        const forAgent = await mintIdToken(deputy.deps, {
          clientId: agent.client.clientId,
          user: alice,
          scopes: ['openid'],
          nonce: null,
          authTime: Date.now(),
        })
        const hourAgo = new Date(Date.now() - 3_600_000)
        const expired = await mintIdToken(
          { ...deputy.deps, clock: { now: () => hourAgo } },
          {
            clientId: b.client.clientId,
            user: alice,
            scopes: ['openid'],
            nonce: null,
            authTime: 0,
          },
        )
        for (const subject of [forAgent, expired])
          await refused(
            exchange(b, {
              subject_token: subject,
              subject_token_type: ID_TOKEN_TYPE,
              resource: R_C,
            }),
            'invalid_request',
          )
        // An access token is not an ID token.
        await refused(
          exchange(b, {
            subject_token: await personToken(),
            subject_token_type: ID_TOKEN_TYPE,
            resource: R_C,
          }),
          'invalid_request',
        )
      })

      it('RFC 7662: introspection of a delegated token shows act', async () => {
        const first = await exchange(b, { subject_token: await personToken(), resource: R_C })
        const response = await deputy.app.request('/introspect', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: b.basic },
          body: new URLSearchParams({ token: first.body.access_token as string }).toString(),
        })
        const body = (await response.json()) as Record<string, unknown>
        expect(body.active).toBe(true)
        expect(body.sub).toBe(alice.id)
        expect(body.act).toEqual({ sub: b.client.clientId })
      })

      it("ending the person's grant ends every token exchanged from it, at every hop", async () => {
        const grant = await deputy.deps.grants.create({
          userId: alice.id,
          clientId: agent.client.clientId,
          resource: R_B,
          scopes: ['read'],
        })
        const minted = await mintAccessToken(deputy.deps, {
          client: agent.client,
          user: alice,
          resource: resources[R_B] as Resource,
          scopes: ['read'],
          grantId: grant.id,
        })
        const first = await exchange(b, { subject_token: minted.token, resource: R_C })
        const second = await exchange(c, {
          subject_token: first.body.access_token as string,
          resource: R_D,
        })
        expect(decodeJwt(second.body.access_token as string).grant_id).toBe(grant.id)
        await deputy.deps.grants.revoke(grant.id, 'test', ADMIN)
        const introspect = await deputy.app.request('/introspect', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: c.basic },
          body: new URLSearchParams({ token: second.body.access_token as string }).toString(),
        })
        expect(await introspect.json()).toEqual({ active: false })
        await refused(
          exchange(c, { subject_token: first.body.access_token as string, resource: R_D }),
          'invalid_request',
        )
      })

      it('every exchange is audited as token.exchanged with the chain, current actor first; never the token', async () => {
        const subject = await personToken()
        const first = await exchange(b, { subject_token: subject, resource: R_C })
        const second = await exchange(c, {
          subject_token: first.body.access_token as string,
          resource: R_D,
        })
        const jti = decodeJwt(second.body.access_token as string).jti as string
        const rows = await deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', 'token.exchanged')
          .execute()
        const row = rows.find((r) => JSON.parse(r.target as string).id === jti)
        if (!row) throw new Error('no token.exchanged record for the token')
        expect(JSON.parse(row.delegation_chain)).toEqual([
          { type: 'agent', id: c.client.clientId },
          { type: 'agent', id: b.client.clientId },
        ])
        const data = JSON.parse(row.data) as Record<string, unknown>
        expect(data.chain).toEqual([c.client.clientId, b.client.clientId])
        expect(data.resource).toBe(R_D)
        expect(data.impersonated).toBe(false)
        expect(JSON.parse(row.on_behalf_of as string)).toMatchObject({ id: alice.id })
        const all = JSON.stringify(
          await deputy.deps.db.selectFrom('audit_events').selectAll().execute(),
        )
        expect(all).not.toContain(subject)
        expect(all).not.toContain(second.body.access_token as string)
      })
    },
  )
}
