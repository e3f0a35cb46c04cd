import { type Context, Hono } from 'hono'
import type { RefusalLog } from '../audit/refusals.js'
import type { AuditEventInput, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { edgeResponse } from '../http/middleware.js'
import { addressKey, type RateLimits } from '../http/rate-limits.js'
import { type Form, FormError, readForm } from '../lib/form.js'
import {
  authenticateClient,
  type ClientAuthDeps,
  claimedClientId,
  presentsClientCredentials,
} from './client-auth.js'
import {
  CIBA_GRANT_TYPE,
  type Client,
  type GrantType,
  JWT_BEARER_GRANT_TYPE,
  TOKEN_EXCHANGE_GRANT_TYPE,
} from './clients.js'
import { type TokenEndpointDpopDeps, tokenEndpointDpop } from './dpop.js'
import { isOAuthError, OAuthError, withinRateLimit } from './errors.js'
import { authorizationCodeGrant } from './grants/authorization-code.js'
import { cibaGrant } from './grants/ciba.js'
import { clientCredentialsGrant } from './grants/client-credentials.js'
import type { GrantDeps, GrantHandler } from './grants/grant.js'
import { jwtBearerGrant, workloadClientOf } from './grants/jwt-bearer.js'
import { refreshTokenGrant } from './grants/refresh-token.js'
import { tokenExchangeGrant } from './grants/token-exchange.js'
import type { Grants } from './grants.js'

/** What the token endpoint uses: client authentication, the grants, and the audit chain. */
export interface TokenEndpointDeps extends GrantDeps, ClientAuthDeps, TokenEndpointDpopDeps {
  clients: GrantDeps['clients'] & ClientAuthDeps['clients']
  /** First and last use of a grant, shown on "your agents" (oauth/grant-use.ts). */
  grants: GrantDeps['grants'] & Pick<Grants, 'recordUse'>
  config: Pick<ResolvedConfig, 'issuer' | 'accessTokenTtlSeconds' | 'delegationMaxDepth'>
  audit: AuditLog
  refusals: Pick<RefusalLog, 'record'>
  rateLimits: Pick<RateLimits, 'take'>
}

/** The grant types /token serves (the registry metadata advertises). */
export const GRANT_HANDLERS = new Map<GrantType, GrantHandler>([
  ['authorization_code', authorizationCodeGrant],
  ['refresh_token', refreshTokenGrant],
  ['client_credentials', clientCredentialsGrant],
  [CIBA_GRANT_TYPE, cibaGrant],
  [TOKEN_EXCHANGE_GRANT_TYPE, tokenExchangeGrant],
  [JWT_BEARER_GRANT_TYPE, jwtBearerGrant],
])

/** Parameters that may repeat: RFC 8707 §2 allows several `resource` values. */
const REPEATABLE = new Set(['resource'])

/**
 * Reads the form body of a token, revocation or introspection request: RFC 6749 §3.2 (and
 * RFC 7009 §2.1, RFC 7662 §2.1) require `application/x-www-form-urlencoded`, and §3.1 forbids
 * repeated parameters.
 */
export async function readOAuthForm(c: Context<AppEnv>): Promise<Form> {
  try {
    return await readForm(c.req, REPEATABLE)
  } catch (err) {
    if (err instanceof FormError) {
      throw new OAuthError('invalid_request', err.message, { reason: err.problem })
    }
    throw err
  }
}

/** RFC 6749 §5.1: token responses are JSON that no cache may keep. */
const NO_STORE_JSON: Readonly<Record<string, string>> = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
}

/** A JSON response that no cache may keep (RFC 6749 §5.1). */
export function noStoreJson(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...NO_STORE_JSON } })
}

/**
 * The token endpoint (RFC 6749 §3.2), as named steps: read the form, authenticate the client,
 * check the grant type is allowed for it, run the grant. Every issuance is written to the audit
 * chain in full before the tokens are sent, every refusal through the refusal log (never the
 * token itself).
 */
export function createTokenRoutes(deps: TokenEndpointDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const tokenEndpoint = `${deps.config.issuer}/token`
  const dpop = tokenEndpointDpop(deps, tokenEndpoint)

  app.post('/token', async (c) => {
    const authorization = c.req.header('authorization')
    let form: Form | undefined
    let client: Client | undefined
    let grantType: string | undefined
    try {
      // Per address before anything is read or checked, per client once it is authenticated (a
      // client's own limit must not be spendable by someone merely naming it).
      const address = addressKey(c.get('clientAddress'))
      await withinRateLimit(() => deps.rateLimits.take('token-address', address), 'token-address')
      form = await readOAuthForm(c)
      grantType = form.get('grant_type')
      if (!grantType) {
        throw new OAuthError('invalid_request', 'grant_type is required', {
          reason: 'missing-grant-type',
        })
      }
      const handler = GRANT_HANDLERS.get(grantType as GrantType)
      if (!handler) {
        throw new OAuthError('unsupported_grant_type', 'this grant type is not supported', {
          reason: `unsupported-grant-type ${grantType.slice(0, 64)}`,
        })
      }
      if (grantType === JWT_BEARER_GRANT_TYPE && !presentsClientCredentials(authorization, form)) {
        // A workload holds no secret: its assertion is its credential (grants/jwt-bearer.ts).
        client = await workloadClientOf(deps, form)
      } else {
        ;({ client } = await authenticateClient(deps, authorization, form, {
          endpointUrl: tokenEndpoint,
          requester: c.get('clientAddress') ?? 'unknown',
        }))
      }
      const clientId = client.clientId
      await withinRateLimit(() => deps.rateLimits.take('token-client', clientId), 'token-client')
      if (!client.grantTypes.includes(grantType as GrantType)) {
        throw new OAuthError('unauthorized_client', 'this client may not use this grant type', {
          reason: `grant-type-not-allowed ${grantType}`,
        })
      }
      // RFC 9449 §5: with a proof, the tokens are bound to its key (checked after the client, so
      // an unauthenticated caller learns nothing from the proof's fate).
      const dpopJkt = await dpop.check(c.req.header('dpop'))
      const result = await handler({ deps, client, form, dpopJkt })
      const actor = { type: 'client', id: client.clientId, label: client.name } as const
      if (result.exchanged) {
        const { exchanged } = result
        // Recorded before the token is sent: who asked (authenticated), for whom, through whom.
        await deps.audit.append({
          type: 'token.exchanged',
          actor,
          onBehalfOf: exchanged.onBehalfOf,
          delegationChain: exchanged.delegationChain,
          target: exchanged.target,
          decision: 'allow',
          requestId: c.get('requestId'),
          data: {
            grantType,
            clientId: client.clientId,
            ...exchanged.data,
            ...(dpopJkt !== undefined ? { dpopJkt } : {}),
          },
        })
        return edgeResponse(c, JSON.stringify(result.body), 200, {
          ...NO_STORE_JSON,
          ...(dpopJkt !== undefined && dpop.nonceHeader()),
        })
      }
      if (result.idJag) {
        const { idJag } = result
        // Deputy vouches for the person to another authorization server: recorded before it is sent.
        await deps.audit.append({
          type: 'id-jag.issued',
          actor,
          onBehalfOf: { type: 'user', id: idJag.userId },
          target: { type: 'id-jag', id: idJag.jti },
          decision: 'allow',
          requestId: c.get('requestId'),
          data: {
            grantType,
            clientId: client.clientId,
            userId: idJag.userId,
            audience: idJag.audience,
            trustedIssuer: idJag.trustedIssuer,
            remoteClientId: idJag.remoteClientId,
            resources: idJag.resources,
            scopes: idJag.scopes,
            jti: idJag.jti,
            expiresAt: new Date(idJag.expiresAt).toISOString(),
          },
        })
        return edgeResponse(c, JSON.stringify(result.body), 200, NO_STORE_JSON)
      }
      const { issued } = result
      // "Last used" is a courtesy for the person's agents page: the tokens are issued (a refresh
      // token already rotated), so a failed write is logged, never a lost answer. A grant whose
      // issuance commits with its record (a code's redemption) has it among those rows.
      if (issued.grantId && !issued.commit)
        await deps.grants.recordUse(issued.grantId).catch((err: unknown) => {
          c.get('logger')?.warn({ err, requestId: c.get('requestId') }, 'grant use not recorded')
        })
      const event = {
        type: 'token.issued',
        actor,
        onBehalfOf: issued.user ? { type: 'user', id: issued.user.id } : null,
        target: { type: 'access_token', id: issued.jti },
        decision: 'allow',
        requestId: c.get('requestId'),
        data: {
          grantType,
          clientId: client.clientId,
          userId: issued.user?.id ?? null,
          resource: issued.resource,
          scopes: issued.scopes,
          jti: issued.jti,
          grantId: issued.grantId,
          refreshToken: issued.refreshToken,
          ...(dpopJkt !== undefined ? { dpopJkt } : {}),
          ...(issued.retried ? { retriedWithinGrace: true } : {}),
          ...(issued.approvalId ? { approvalId: issued.approvalId } : {}),
          ...(issued.assertion ? { assertion: issued.assertion } : {}),
        },
      } satisfies AuditEventInput
      if (!issued.commit) await deps.audit.append(event)
      else if (!(await deps.audit.appendWith(event, issued.commit.writes)))
        await issued.commit.lost()
      return edgeResponse(c, JSON.stringify(result.body), 200, {
        ...NO_STORE_JSON,
        // RFC 9449 §8.2: the nonce for the client's next proof comes with the answer.
        ...(dpopJkt !== undefined && dpop.nonceHeader()),
      })
    } catch (err) {
      if (isOAuthError(err) && err.status < 500) {
        const clientId = client?.clientId ?? claimedClientId(authorization, form)
        // Anyone can send refused requests: repeats are summarised (audit/refusals.ts).
        await deps.refusals.record({
          type: 'token.refused',
          actor: { type: 'client', id: clientId?.slice(0, 200) ?? 'unknown' },
          decision: 'deny',
          reason: err.reason.slice(0, 200),
          requestId: c.get('requestId'),
          data: { error: err.code, grantType: grantType?.slice(0, 64) ?? null },
        })
      }
      throw err
    }
  })

  return app
}
