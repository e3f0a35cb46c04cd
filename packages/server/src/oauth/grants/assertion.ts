import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
} from 'jose'
import type { Kysely } from 'kysely'
import type { ResolvedConfig } from '../../config/load.js'
import type { Clock } from '../../lib/clock.js'
import type { Database } from '../../store/schema.js'
import { type ClientJwks, ClientJwksUnavailable } from '../client-jwks.js'
import { OAuthError } from '../errors.js'
import type { TrustedIssuer, TrustedIssuers } from '../trusted-issuers.js'

// RFC 7523 §3 for grant assertions (grants/jwt-bearer.ts): which trusted issuer an assertion is
// from, and whether it holds — signature, audience, lifetime, single use.

/** draft-ietf-oauth-identity-assertion-authz-grant §3.1: the `typ` of an ID-JAG. */
export const ID_JAG_TYP = 'oauth-id-jag+jwt'

/** Clock skew tolerated between an issuer and Deputy for `exp`, `nbf` and `iat`. */
export const ASSERTION_CLOCK_TOLERANCE_SECONDS = 30

/** What the grant reads besides the usual: the trust store and the issuers' key sets. */
export interface JwtBearerDeps {
  trustedIssuers: Pick<TrustedIssuers, 'byIssuer'>
  issuerJwks: Pick<ClientJwks, 'keysFor'>
}

/** What verifying an assertion reads. */
export interface AssertionDeps extends JwtBearerDeps {
  config: Pick<ResolvedConfig, 'issuer'>
  clock: Clock
  db: Kysely<Database>
}

/** An assertion whose signature and claims were checked against its trusted issuer. */
export interface VerifiedAssertion {
  issuer: TrustedIssuer
  claims: JWTPayload & { iss: string; sub: string; exp: number; jti: string }
}

/** RFC 7521 §5.2: a bad assertion is `invalid_grant`. */
export function refuse(description: string, reason: string): OAuthError {
  return new OAuthError('invalid_grant', description, { reason })
}

/** The trusted issuer an assertion's (unverified) `iss` names, or `invalid_grant`. */
export async function trustedIssuerOf(
  deps: AssertionDeps,
  assertion: string,
): Promise<TrustedIssuer> {
  let iss: unknown
  try {
    iss = decodeJwt(assertion).iss
  } catch {
    throw refuse('the assertion is not a JWT', 'malformed-assertion')
  }
  if (typeof iss !== 'string') throw refuse('the assertion has no iss', 'assertion-without-iss')
  // draft-ietf-oauth-identity-assertion-authz-grant §9: never honour what Deputy issued itself.
  const issuer = iss === deps.config.issuer ? undefined : await deps.trustedIssuers.byIssuer(iss)
  if (!issuer || issuer.kind === 'resource-as') {
    throw refuse(
      'the assertion is not from a trusted issuer',
      `untrusted-issuer ${iss.slice(0, 200)}`,
    )
  }
  return issuer
}

/** The issuer's keys: the set stored from a file, or the one at its JWKS URL (cached). */
async function issuerKeys(
  deps: AssertionDeps,
  issuer: TrustedIssuer,
  assertion: string,
): Promise<JSONWebKeySet> {
  if (issuer.jwks) return issuer.jwks as unknown as JSONWebKeySet
  let kid: string | undefined
  try {
    const header = decodeProtectedHeader(assertion)
    kid = typeof header.kid === 'string' ? header.kid : undefined
  } catch {
    throw refuse('the assertion is not a JWT', 'malformed-assertion')
  }
  try {
    return await deps.issuerJwks.keysFor(issuer.jwksUri as string, kid)
  } catch (err) {
    if (err instanceof ClientJwksUnavailable) {
      throw refuse(
        "the issuer's keys cannot be read now",
        `issuer-jwks-unavailable ${issuer.name} ${err.reason}`,
      )
    }
    throw err
  }
}

/**
 * RFC 7523 §3 for a grant assertion: `iss` a trusted issuer, signed by one of its keys with one
 * of its algorithms, `sub` present, `aud` naming Deputy (or the issuer's configured audience),
 * `exp` in the future and no further than the issuer's maximum lifetime, `nbf` and `iat` not in
 * the future, and `jti` used once: it is remembered until the assertion expires.
 */
export async function verifyGrantAssertion(
  deps: AssertionDeps,
  assertion: string,
  tokenEndpoint: string,
): Promise<VerifiedAssertion> {
  const issuer = await trustedIssuerOf(deps, assertion)
  const idJag = issuer.kind === 'enterprise-idp'
  let typ: unknown
  try {
    typ = decodeProtectedHeader(assertion).typ
  } catch {
    throw refuse('the assertion is not a JWT', 'malformed-assertion')
  }
  // An ID-JAG is only ever an ID-JAG, and nothing else passes for one (explicit typing, RFC 8725 §3.11).
  if (idJag !== (typeof typ === 'string' && typ.toLowerCase() === ID_JAG_TYP)) {
    throw refuse(
      idJag
        ? `an enterprise IdP's assertion must have typ ${ID_JAG_TYP}`
        : 'a workload token is not an ID-JAG',
      `assertion-typ-${idJag ? 'not-id-jag' : 'id-jag-from-workload-issuer'}`,
    )
  }
  const jwks = await issuerKeys(deps, issuer, assertion)
  const now = deps.clock.now()
  // The draft's aud for an ID-JAG is the authorization server's issuer alone.
  const audience =
    issuer.audience ?? (idJag ? deps.config.issuer : [deps.config.issuer, tokenEndpoint])
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(assertion, createLocalJWKSet(jwks), {
      algorithms: issuer.algorithms,
      issuer: issuer.issuer,
      audience,
      requiredClaims: ['sub', 'exp', 'jti', ...(idJag ? ['iat', 'client_id'] : [])],
      currentDate: now,
      clockTolerance: ASSERTION_CLOCK_TOLERANCE_SECONDS,
    }))
  } catch (err) {
    const code = (err as { code?: string; claim?: string }).code ?? 'invalid'
    const claim = (err as { claim?: string }).claim
    throw refuse(
      'the assertion is invalid',
      `assertion-${code}${claim ? ` ${claim}` : ''} ${issuer.name}`,
    )
  }
  // The draft's §4.3: an ID-JAG is for one authorization server; one naming others too could be
  // replayed there.
  if (idJag && Array.isArray(payload.aud) && payload.aud.length !== 1) {
    throw refuse(
      'the identity assertion names more than one audience',
      `id-jag-aud-not-single ${issuer.name}`,
    )
  }
  const nowSeconds = Math.floor(now.getTime() / 1000)
  const exp = payload.exp as number
  if (exp > nowSeconds + issuer.maxLifetimeSeconds + ASSERTION_CLOCK_TOLERANCE_SECONDS) {
    throw refuse('the assertion is valid for too long', `assertion-exp-too-far ${issuer.name}`)
  }
  if (
    typeof payload.iat === 'number' &&
    payload.iat > nowSeconds + ASSERTION_CLOCK_TOLERANCE_SECONDS
  ) {
    throw refuse('the assertion was issued in the future', `assertion-iat-in-future ${issuer.name}`)
  }
  const { sub, jti } = payload
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 1024 || sub.includes('\u0000'))
    throw refuse('the assertion has no usable sub', `assertion-sub-invalid ${issuer.name}`)
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256 || jti.includes('\u0000'))
    throw refuse('the assertion has no usable jti', `assertion-jti-invalid ${issuer.name}`)
  // Single use until it expires; the key is atomic across requests and replicas.
  const inserted = await deps.db
    .insertInto('client_assertion_jtis')
    .values({
      client_id: `issuer:${issuer.issuer}`,
      jti,
      expires_at: (exp + ASSERTION_CLOCK_TOLERANCE_SECONDS) * 1000,
    })
    .onConflict((oc) => oc.columns(['client_id', 'jti']).doNothing())
    .executeTakeFirst()
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) {
    throw refuse('the assertion was already used', `assertion-replayed ${issuer.name}`)
  }
  return { issuer, claims: payload as VerifiedAssertion['claims'] }
}

/** What the audit record keeps of an assertion: who vouched, for whom, which one. */
export function assertionRecord(verified: VerifiedAssertion): {
  trustedIssuer: string
  issuer: string
  subject: string
  jti: string
} {
  return {
    trustedIssuer: verified.issuer.name,
    issuer: verified.issuer.issuer,
    subject: verified.claims.sub,
    jti: verified.claims.jti,
  }
}
