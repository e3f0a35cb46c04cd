import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import type { Actor } from '../../audit/types.js'
import type { User } from '../../identity/users.js'
import { type AccessTokenClaims, type ActClaim, mintAccessToken } from '../access-token.js'
import { OAuthError } from '../errors.js'
import type { Resource } from '../resources.js'
import { parseScope } from '../scopes.js'
import {
  ACCESS_TOKEN_TYPE,
  activeAccessToken,
  type ExchangeProfile,
  type ExchangeRequest,
  holdsSubjectToken,
  ID_TOKEN_TYPE,
  invalid,
} from './exchange-profile.js'
import type { GrantContext, GrantResult } from './grant.js'

// RFC 8693 delegation (issue 13 §1, docs/delegation.md): the authenticated client acts for the
// subject token's `sub` toward one registered resource. The token it gets keeps `sub`, names it
// in `act` with the earlier actors nested inside (§4.1), is no broader than the subject token or
// the resource, ends no later than the subject token, and comes with no refresh token.

/** How deep an incoming `act` is read; deeper than any depth setting allows (it is at most 10). */
const MAX_ACT_READ = 11

/** The actors of an `act` claim, the current one first; null when it is not a chain of `sub`s. */
export function actorsOf(act: unknown): string[] | null {
  const actors: string[] = []
  let current = act
  while (current !== undefined) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return null
    const { sub, act: inner } = current as { sub?: unknown; act?: unknown }
    if (typeof sub !== 'string' || actors.length === MAX_ACT_READ) return null
    actors.push(sub)
    current = inner
  }
  return actors
}

/** `act` for a list of actors, the current one first (the outermost claim). */
export function actClaimOf(actors: readonly string[]): ActClaim | undefined {
  let act: ActClaim | undefined
  for (const sub of [...actors].reverse()) act = act === undefined ? { sub } : { sub, act }
  return act
}

/** The subject token made one shape, whichever type it was. */
interface Subject {
  sub: string
  /** The person acted for. */
  user: User
  /** What the subject token allowed; null for an ID token, which carries no API scope. */
  scopes: string[] | null
  exp: number
  actors: string[]
  mayAct: unknown
  jti: string | null
  grantId: string | null
}

/** RFC 8693 §2.1 with an access token: active, held legitimately by the caller. */
async function accessTokenSubject(ctx: GrantContext, token: string): Promise<Subject> {
  const claims: AccessTokenClaims = await activeAccessToken(ctx, token, 'subject_token')
  if (!holdsSubjectToken(ctx.client, claims)) {
    throw invalid(
      'the subject_token was not issued to this client or for a resource it serves',
      'subject-token-not-held',
    )
  }
  const actors = claims.act === undefined ? [] : actorsOf(claims.act)
  if (actors === null) throw invalid('the subject_token has a malformed act', 'subject-token-act')
  // A client_credentials token names no person: there is nobody to act for.
  const user =
    claims.sub === claims.client_id ? undefined : await ctx.deps.users.findById(claims.sub)
  if (!user)
    throw invalid('the subject_token does not name a person', 'subject-token-without-person')
  return {
    sub: claims.sub,
    user,
    scopes: parseScope(claims.scope) ?? [],
    exp: claims.exp,
    actors,
    mayAct: claims.may_act,
    jti: claims.jti,
    grantId: typeof claims.grant_id === 'string' ? claims.grant_id : null,
  }
}

/**
 * An ID token Deputy issued to the caller (OpenID Connect Core §2: `aud` is the client), not
 * expired, of a person still active, from a client that still exists.
 */
async function idTokenSubject(ctx: GrantContext, token: string): Promise<Subject> {
  const { deps, client } = ctx
  let payload: Record<string, unknown>
  try {
    if (decodeProtectedHeader(token).typ !== 'JWT') throw new Error('not an ID token')
    ;({ payload } = await jwtVerify(token, createLocalJWKSet(await deps.signingKeys.jwks()), {
      issuer: deps.config.issuer,
      audience: client.clientId,
      algorithms: ['ES256', 'EdDSA'],
      currentDate: deps.clock.now(),
      requiredClaims: ['sub', 'aud', 'exp', 'iat'],
    }))
  } catch {
    throw invalid(
      'the subject_token is not a valid ID token Deputy issued to this client',
      'subject-token-invalid',
    )
  }
  const user = await deps.users.findById(String(payload.sub))
  if (user?.status !== 'active')
    throw invalid('the subject_token is no longer active', 'subject-token-user-unavailable')
  return {
    sub: user.id,
    user,
    scopes: null,
    exp: payload.exp as number,
    actors: [],
    mayAct: payload.may_act,
    jti: null,
    grantId: null,
  }
}

/** The one resource the token is for: `resource` or `audience` (both must agree), registered. */
async function targetOf(ctx: GrantContext): Promise<Resource> {
  const { form, deps } = ctx
  const audience = form.get('audience')
  const named = [...form.all('resource'), ...(audience === undefined ? [] : [audience])]
  const distinct = [...new Set(named)]
  if (distinct.length === 0)
    throw invalid('resource or audience is required', 'missing-resource-or-audience')
  if (distinct.length > 1)
    throw new OAuthError('invalid_target', 'name exactly one resource', {
      reason: 'several-targets',
    })
  const uri = distinct[0] as string
  const resource = uri.length > 2048 ? undefined : await deps.resources.get(uri)
  if (!resource)
    throw new OAuthError('invalid_target', 'the resource is not registered here', {
      reason: `unknown-resource ${uri.slice(0, 200)}`,
    })
  return resource
}

/**
 * Who may act (issue 13 §1): a `may_act` in the subject token names the one client that may
 * (RFC 8693 §4.4), and any other is refused whatever the operator's rules say; without it, the
 * operator's delegation rules for the client decide. Either way the target must be one the
 * client may reach: its delegation rules' resources, or (when `may_act` named it) the resources
 * the operator registered it for. A client not allowed to act at all is `unauthorized_client`;
 * one allowed, but not toward this resource, `invalid_target` (RFC 8693 §2.2.2).
 */
async function mayAct(
  ctx: GrantContext,
  subject: Subject,
  resource: Resource,
): Promise<{ impersonate: boolean }> {
  const { client, deps } = ctx
  const rule = await deps.delegationRules.forClient(client.clientId)
  let named = false
  if (subject.mayAct !== undefined) {
    const mayActSub = (subject.mayAct as { sub?: unknown } | null)?.sub
    if (mayActSub !== client.clientId)
      throw new OAuthError('unauthorized_client', 'the subject_token names another actor', {
        reason: 'may-act-other-client',
      })
    named = true
  } else if (rule.resources.length === 0) {
    throw new OAuthError('unauthorized_client', 'this client may not act for others', {
      reason: 'no-delegation-rule',
    })
  }
  const byRule = rule.resources.includes(resource.uri)
  const registered = named && (client.allowedResources ?? []).includes(resource.uri)
  if (!byRule && !registered)
    throw new OAuthError('invalid_target', 'this client may not act toward this resource', {
      reason: `delegation-not-allowed ${resource.uri}`,
    })
  return { impersonate: byRule && rule.impersonate }
}

/** The scopes: what was asked (or, unasked, all that is left), within the subject's and the resource's. */
function scopesOf(ctx: GrantContext, subject: Subject, resource: Resource): string[] {
  const requested = parseScope(ctx.form.get('scope'))
  if (requested === null)
    throw new OAuthError('invalid_scope', 'scope is malformed', { reason: 'malformed-scope' })
  // An ID token carries no API scope: what the operator allowed the client is the bound.
  const held = subject.scopes ?? ctx.client.allowedScopes
  const available = held.filter((s) => Object.hasOwn(resource.scopes, s))
  const scopes = requested.length > 0 ? requested : available
  if (scopes.length === 0)
    throw new OAuthError('invalid_scope', 'no scope of the subject_token applies to the resource', {
      reason: `no-scope-left ${resource.uri}`,
    })
  const broader = scopes.filter((s) => !available.includes(s))
  if (broader.length > 0)
    throw new OAuthError('invalid_scope', 'a requested scope is broader than the subject_token', {
      reason: `scope-broader ${broader.join(' ').slice(0, 150)}`,
    })
  return scopes
}

/** `actor_token`, where sent: an active Deputy access token of the authenticated client itself. */
async function checkActorToken(ctx: GrantContext, actor: ExchangeRequest['actor']): Promise<void> {
  if (actor === undefined) return
  if (actor.tokenType !== ACCESS_TOKEN_TYPE)
    throw invalid(`actor_token_type must be ${ACCESS_TOKEN_TYPE}`, 'unsupported-actor-token-type')
  const claims = await activeAccessToken(ctx, actor.token, 'actor_token')
  if (claims.sub !== ctx.client.clientId || claims.client_id !== ctx.client.clientId)
    throw invalid('the actor_token does not name the authenticated client', 'actor-token-other')
}

async function delegate(ctx: GrantContext, request: ExchangeRequest): Promise<GrantResult> {
  const { deps, client } = ctx
  const subject =
    request.subjectTokenType === ID_TOKEN_TYPE
      ? await idTokenSubject(ctx, request.subjectToken)
      : await accessTokenSubject(ctx, request.subjectToken)
  await checkActorToken(ctx, request.actor)
  const resource = await targetOf(ctx)
  const { impersonate: ruleImpersonates } = await mayAct(ctx, subject, resource)
  // An actor_token says who acts: it is delegation, never impersonation.
  const impersonate = ruleImpersonates && request.actor === undefined
  const actors = impersonate ? subject.actors : [client.clientId, ...subject.actors]
  if (actors.length > deps.config.delegationMaxDepth)
    throw invalid(
      `the delegation chain would be longer than ${deps.config.delegationMaxDepth} actors`,
      `chain-too-deep ${actors.length}`,
    )
  const scopes = scopesOf(ctx, subject, resource)
  const act = actClaimOf(actors)
  const access = await mintAccessToken(deps, {
    client,
    user: subject.user,
    resource,
    scopes,
    // The person's grant, so that ending it ends every token exchanged from it.
    grantId: subject.grantId,
    act,
    notAfter: subject.exp,
    dpopJkt: ctx.dpopJkt,
  })
  const chain: Actor[] = actors.map((id) => ({ type: 'agent', id }))
  return {
    body: {
      access_token: access.token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: access.tokenType,
      expires_in: access.expiresIn,
      scope: access.scope,
    },
    exchanged: {
      onBehalfOf: { type: 'user', id: subject.sub },
      delegationChain: chain,
      target: { type: 'access_token', id: access.jti },
      data: {
        requestedTokenType: request.requestedTokenType,
        subjectTokenType: request.subjectTokenType,
        subjectTokenJti: subject.jti,
        sub: subject.sub,
        resource: resource.uri,
        scopes,
        jti: access.jti,
        grantId: subject.grantId,
        chain: actors,
        impersonated: impersonate,
        actorToken: request.actor !== undefined,
        expiresAt: new Date(access.exp * 1000).toISOString(),
      },
    },
  }
}

/** The delegation profile: `requested_token_type` access_token, RFC 8693's default. */
export const DELEGATION_PROFILE: ExchangeProfile = {
  subjectTokenTypes: [ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE],
  exchange: delegate,
}
