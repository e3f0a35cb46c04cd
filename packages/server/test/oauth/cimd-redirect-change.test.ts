import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Client } from '../../src/oauth/clients.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { type DocumentServer, json, startDocumentServer } from '../helpers/document-server.js'
import {
  auditOf,
  createWorld,
  errorOf,
  introspect,
  postForm,
  RESOURCE,
  refresh,
  tokensOf,
  type World,
} from './token-helpers.js'

// Issue 13 §5: a Client ID Metadata Document is the client's registration (CIMD §4). When a
// re-fetched document no longer lists a redirect URI, the grants a person made through that URI
// end: whoever answers there now is not the client the person agreed to.

const KEPT = 'http://127.0.0.1:3000/callback'
const DROPPED = 'https://agent.example/cb'

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `a re-fetched metadata document that drops a redirect URI (${dialect.name})`,
    () => {
      let docs: DocumentServer
      let world: World
      let clientId: string

      beforeAll(async () => {
        docs = await startDocumentServer()
      })
      afterAll(() => docs?.close())

      const serve = (redirectUris: string[]) =>
        docs.routes.set(
          new URL(clientId).pathname,
          json(
            { client_id: clientId, client_name: 'Shirt Agent', redirect_uris: redirectUris },
            { 'cache-control': 'max-age=60' },
          ),
        )

      beforeEach(async () => {
        world = await createWorld({
          database: await dialect.create(),
          config: { dangerouslyAllowHttpLoopbackClientMetadata: true },
        })
        clientId = `${docs.origin}/agents/${crypto.randomUUID()}/client.json`
        serve([KEPT, DROPPED])
      })
      afterEach(() => world.deputy.dispose())

      /** A grant through `redirectUri` and its first tokens, redeemed over the token endpoint. */
      async function grantThrough(redirectUri: string) {
        const { deps } = world.deputy
        const client = await deps.clients.resolve(clientId)
        if (!client) throw new Error('document not accepted')
        const grant = await deps.grants.create({
          userId: world.alice.id,
          clientId,
          resource: RESOURCE,
          scopes: ['tools:read'],
          redirectUri,
        })
        const refreshToken = await deps.refreshTokens.issue({
          grantId: grant.id,
          clientId,
          userId: world.alice.id,
          resource: RESOURCE,
          dpopJkt: null,
          scopes: ['tools:read'],
        })
        const tokens = await tokensOf(
          await postForm(world, '/token', {
            grant_type: 'refresh_token',
            refresh_token: refreshToken,
            client_id: clientId,
          }),
        )
        return { grantId: grant.id, tokens }
      }

      it('ends the grants made through the dropped URI, audited, and keeps the others', async () => {
        const dropped = await grantThrough(DROPPED)
        const kept = await grantThrough(KEPT)
        serve([KEPT])
        world.clock.advance(61)
        // Any request naming the client re-fetches the stale document.
        expect((await world.deputy.deps.clients.resolve(clientId))?.redirectUris).toEqual([KEPT])

        expect(await world.deputy.deps.grants.isActive(dropped.grantId)).toBe(false)
        expect(await world.deputy.deps.grants.isActive(kept.grantId)).toBe(true)
        const refused = await refresh(world, dropped.tokens.refresh_token, {}, {
          clientId,
        } as Client)
        expect(await errorOf(refused)).toBe('invalid_grant')
        expect(await introspect(world, dropped.tokens.access_token)).toEqual({ active: false })
        expect(
          (await refresh(world, kept.tokens.refresh_token, {}, { clientId } as Client)).status,
        ).toBe(200)

        const [event] = await auditOf(world, 'client-metadata.redirect-uris-removed')
        expect(event?.reason).toBe('redirect-uri-removed-from-document')
        expect(JSON.parse(event?.target ?? 'null')).toMatchObject({ type: 'client', id: clientId })
        expect(event?.data).toEqual({ removed: [DROPPED], grantsEnded: 1 })
      })

      it('a document re-fetched with the same (or more) redirect URIs ends nothing and records nothing', async () => {
        const granted = await grantThrough(DROPPED)
        serve([KEPT, DROPPED, 'https://agent.example/new'])
        world.clock.advance(61)
        await world.deputy.deps.clients.resolve(clientId)
        expect(await world.deputy.deps.grants.isActive(granted.grantId)).toBe(true)
        expect(await auditOf(world, 'client-metadata.redirect-uris-removed')).toEqual([])
      })
    },
  )
}
