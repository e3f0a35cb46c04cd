import { decodeJwt } from 'jose'
import type { Form } from '../../lib/form.js'
import type { Client } from '../clients.js'
import { OAuthError } from '../errors.js'
import type { IssuerRule, TrustedIssuer } from '../trusted-issuers.js'
import {
  assertionRecord,
  refuse,
  trustedIssuerOf,
  type VerifiedAssertion,
  verifyGrantAssertion,
} from './assertion.js'
import { machineTokens } from './client-credentials.js'
import type { GrantContext, GrantDeps, GrantResult } from './grant.js'
import { idJagGrant } from './id-jag-grant.js'

// RFC 7523 §2.1: an assertion as the grant. Two profiles, told apart by the issuer the operator
// trusts: a workload issuer's token (a Kubernetes service account, GitHub Actions' OIDC token, a
// SPIFFE JWT-SVID) gets the client a rule maps its claims to, as client_credentials would; an
// enterprise IdP's Identity Assertion JWT (`typ: oauth-id-jag+jwt`, id-jag-grant.ts) gets the
// authenticated client a token for the person it names.

/** The `assertion` parameter (RFC 7523 §2.1: exactly one JWT). */
function assertionOf(form: Form): string {
  const assertion = form.get('assertion')
  if (!assertion) {
    throw new OAuthError('invalid_request', 'assertion is required', {
      reason: 'missing-assertion',
    })
  }
  return assertion
}

/** The rules of a workload issuer whose every claim the assertion carries with that exact value. */
function matchingRules(issuer: TrustedIssuer, claims: Record<string, unknown>): IssuerRule[] {
  return issuer.rules.filter((rule) =>
    Object.entries(rule.claims).every(([name, value]) => claims[name] === value),
  )
}

/** The one client the rules map these claims to; none, or two different ones, is no client. */
function mappedClient(issuer: TrustedIssuer, claims: Record<string, unknown>): string | undefined {
  const clients = new Set(matchingRules(issuer, claims).map((r) => r.client))
  return clients.size === 1 ? [...clients][0] : undefined
}

/**
 * The client a workload's request without client credentials is for: the one the rules of the
 * trusted workload issuer map the (not yet verified) assertion's claims to. Nothing is fetched
 * and nothing is trusted yet: the grant verifies the assertion and maps its claims again.
 */
export async function workloadClientOf(deps: GrantDeps, form: Form): Promise<Client> {
  const assertion = assertionOf(form)
  const issuer = await trustedIssuerOf(deps, assertion)
  if (issuer.kind !== 'workload') {
    throw new OAuthError('invalid_client', 'an ID-JAG needs client authentication', {
      reason: `id-jag-without-client-authentication ${issuer.name}`,
    })
  }
  const clientId = mappedClient(issuer, decodeJwt(assertion))
  if (clientId === undefined) {
    throw refuse('no rule maps this workload to a client', `workload-not-mapped ${issuer.name}`)
  }
  const bodyClientId = form.get('client_id')
  if (bodyClientId !== undefined && bodyClientId !== clientId) {
    throw new OAuthError('invalid_client', 'client_id does not name the workload’s client', {
      reason: 'client-id-mismatch',
    })
  }
  const client = await deps.clients.resolve(clientId)
  if (!client) {
    throw refuse(
      'the workload’s client is not available',
      `workload-client-unavailable ${clientId}`,
    )
  }
  return client
}

/** A workload's token: the client its claims map to, with what the operator granted the client. */
async function workloadGrant(ctx: GrantContext, verified: VerifiedAssertion): Promise<GrantResult> {
  const { issuer, claims } = verified
  // With client credentials, the assertion must map to that very client; without, to the one
  // the request was taken to be for (workloadClientOf, on the same claims before verification).
  const rules = matchingRules(issuer, claims)
  if (!rules.some((r) => r.client === ctx.client.clientId)) {
    throw refuse(
      'no rule maps this workload to this client',
      `workload-not-mapped-to-client ${issuer.name} ${ctx.client.clientId}`,
    )
  }
  if (new Set(rules.map((r) => r.client)).size > 1) {
    throw refuse(
      'the workload maps to more than one client',
      `workload-mapping-ambiguous ${issuer.name}`,
    )
  }
  const result = await machineTokens(ctx)
  if (!result.issued) return result
  return { ...result, issued: { ...result.issued, assertion: assertionRecord(verified) } }
}

/** The jwt-bearer grant (RFC 7523 §2.1): a workload's token, or an enterprise IdP's ID-JAG. */
export async function jwtBearerGrant(ctx: GrantContext): Promise<GrantResult> {
  const { deps, form } = ctx
  const assertion = assertionOf(form)
  const verified = await verifyGrantAssertion(deps, assertion, `${deps.config.issuer}/token`)
  if (verified.issuer.kind === 'workload') return workloadGrant(ctx, verified)
  return idJagGrant(ctx, verified)
}
