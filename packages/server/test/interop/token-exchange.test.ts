import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { mintAccessToken } from '../../src/oauth/access-token.js'
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/oauth/clients.js'
import type { Resource } from '../../src/oauth/resources.js'
import { verifyAccessTokenLikeAResourceServer } from './access-token.js'
import { type InteropDeputy, OTHER_RESOURCE, RESOURCE, startInteropDeputy } from './fixture.js'

// Interop for RFC 8693 delegation (issue 13 §1) with openid-client (panva, npm) as the independent
// client: each hop is the library's generic grant request over real HTTP, with its own client
// authentication and its own parsing of the token response; the tokens are then checked as a
// resource server would (jose, Deputy's JWKS) and their `act` nesting read from the JWT.

const ACTOR: Actor = { type: 'system', id: 'interop' }
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const THIRD = { uri: 'https://files.example/api', scopes: { 'shop:order': 'Order' } }

describe('openid-client: RFC 8693 delegation over two hops', () => {
  let env: InteropDeputy
  const agents: Record<'b' | 'c', { clientId: string; clientSecret: string }> = {
    b: { clientId: '', clientSecret: '' },
    c: { clientId: '', clientSecret: '' },
  }

  beforeAll(async () => {
    env = await startInteropDeputy({ webClientAuth: 'client_secret_basic' })
    const { deps } = env.deputy
    await deps.resources.put(
      { ...OTHER_RESOURCE, scopes: { ...OTHER_RESOURCE.scopes, 'shop:order': 'Order' } },
      ACTOR,
    )
    await deps.resources.put(THIRD, ACTOR)
    for (const [name, served, to] of [
      ['b', RESOURCE.uri, OTHER_RESOURCE.uri],
      ['c', OTHER_RESOURCE.uri, THIRD.uri],
    ] as const) {
      const created = await deps.clients.register(
        {
          name: `Interop agent ${name}`,
          grantTypes: [TOKEN_EXCHANGE_GRANT_TYPE],
          tokenEndpointAuthMethod: 'client_secret_basic',
          allowedResources: [served],
        },
        ACTOR,
      )
      agents[name] = {
        clientId: created.client.clientId,
        clientSecret: created.clientSecret as string,
      }
      await deps.delegationRules.set(created.client.clientId, { resources: [to] }, ACTOR)
    }
  })

  afterAll(async () => {
    await env?.close()
  })

  async function configure(who: 'b' | 'c'): Promise<client.Configuration> {
    const { clientId, clientSecret } = agents[who]
    return client.discovery(
      new URL(env.issuer),
      clientId,
      undefined,
      client.ClientSecretBasic(clientSecret),
      { execute: [client.allowInsecureRequests] },
    )
  }

  it('B then C: each answer is a Bearer access token with issued_token_type, no refresh token, act nested', async () => {
    const { deps } = env.deputy
    const web = await deps.clients.get(env.webClient.clientId)
    const resource = (await deps.resources.get(RESOURCE.uri)) as Resource
    if (!web) throw new Error('fixture missing')
    const subject = await mintAccessToken(deps, {
      client: web,
      user: env.user,
      resource,
      scopes: ['shop:order', 'shop:read'],
      grantId: null,
    })

    const first = await client.genericGrantRequest(
      await configure('b'),
      TOKEN_EXCHANGE_GRANT_TYPE,
      {
        subject_token: subject.token,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: OTHER_RESOURCE.uri,
        scope: 'shop:order',
      },
    )
    expect(first.token_type).toBe('bearer')
    expect(first.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
    expect(first.refresh_token).toBeUndefined()
    expect(first.scope).toBe('shop:order')

    const second = await client.genericGrantRequest(
      await configure('c'),
      TOKEN_EXCHANGE_GRANT_TYPE,
      {
        subject_token: first.access_token,
        subject_token_type: ACCESS_TOKEN_TYPE,
        audience: THIRD.uri,
      },
    )
    expect(second.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
    expect(second.refresh_token).toBeUndefined()

    const claims = await verifyAccessTokenLikeAResourceServer(second.access_token, {
      issuer: env.issuer,
      jwksUri: `${env.issuer}/jwks`,
      audience: THIRD.uri,
    })
    expect(claims.sub).toBe(env.user.id)
    expect(claims.client_id).toBe(agents.c.clientId)
    expect(claims.scope).toBe('shop:order')
    expect(claims.act).toEqual({ sub: agents.c.clientId, act: { sub: agents.b.clientId } })
    expect(decodeJwt(first.access_token).act).toEqual({ sub: agents.b.clientId })
    expect(claims.exp as number).toBeLessThanOrEqual(subject.exp)
  })

  it('RFC 9449: with the library DPoP handle the exchanged token is bound to its key (token_type DPoP, cnf.jkt)', async () => {
    const { deps } = env.deputy
    const web = await deps.clients.get(env.webClient.clientId)
    if (!web) throw new Error('fixture missing')
    const subject = await mintAccessToken(deps, {
      client: web,
      user: env.user,
      resource: (await deps.resources.get(RESOURCE.uri)) as Resource,
      scopes: ['shop:order'],
      grantId: null,
    })
    const config = await configure('b')
    const keyPair = await client.randomDPoPKeyPair('ES256')
    const answer = await client.genericGrantRequest(
      config,
      TOKEN_EXCHANGE_GRANT_TYPE,
      {
        subject_token: subject.token,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: OTHER_RESOURCE.uri,
      },
      { DPoP: client.getDPoPHandle(config, keyPair) },
    )
    expect(answer.token_type).toBe('dpop')
    expect(answer.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
    const claims = decodeJwt(answer.access_token)
    expect(claims.cnf).toEqual({
      jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)),
    })
    expect(claims.act).toEqual({ sub: agents.b.clientId })
  })

  it("a broader scope on the second hop is the library's ResponseBodyError invalid_scope", async () => {
    const { deps } = env.deputy
    const web = await deps.clients.get(env.webClient.clientId)
    if (!web) throw new Error('fixture missing')
    const subject = await mintAccessToken(deps, {
      client: web,
      user: env.user,
      resource: (await deps.resources.get(RESOURCE.uri)) as Resource,
      scopes: ['shop:read'],
      grantId: null,
    })
    const err = await client
      .genericGrantRequest(await configure('b'), TOKEN_EXCHANGE_GRANT_TYPE, {
        subject_token: subject.token,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: OTHER_RESOURCE.uri,
        scope: 'shop:order',
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(client.ResponseBodyError)
    expect((err as client.ResponseBodyError).error).toBe('invalid_scope')
  })
})
