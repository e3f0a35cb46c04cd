import type { Kysely } from 'kysely'
import type { Actor, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { User } from '../identity/users.js'
import type { Database } from '../store/schema.js'
import type { AuthorizationCodes } from './authorization-codes.js'
import type { AuthorizationRequest } from './authorization-requests.js'
import type { Client } from './clients.js'
import type { Grants } from './grants.js'
import { isLoopbackRedirect } from './redirect-uris.js'
import type { Resource } from './resources.js'
import { OIDC_SCOPES } from './scopes.js'

/** What planning, approving and denying an authorization reads and writes. */
export interface ConsentDeps {
  db: Kysely<Database>
  config: Pick<ResolvedConfig, 'issuer'>
  grants: Pick<Grants, 'consentedScopes' | 'rememberedScopes' | 'rememberConsentWith' | 'prepare'>
  authorizationCodes: Pick<AuthorizationCodes, 'prepareIssue'>
  audit: AuditLog
}

/** What the consent page says for the OpenID Connect scopes, which no resource defines. */
export const OIDC_SCOPE_SENTENCES: Record<string, string> = {
  openid: 'Know which Deputy account is yours.',
  profile: 'See your name.',
  email: 'See your email address.',
  offline_access: 'Keep its access after you close it, until you revoke it.',
}

/** The sentence the consent page shows for a scope. */
export function scopeSentence(resource: Resource, scope: string): string {
  return resource.scopes[scope] ?? OIDC_SCOPE_SENTENCES[scope] ?? scope
}

/** What the person has to decide for one request, given what they agreed to before. */
export interface ConsentPlan {
  /** True when the consent page must be shown. */
  ask: boolean
  /** Requested scopes the person has not agreed to yet: the only ones the page asks about. */
  newScopes: string[]
  /** Scopes agreed to before for this client and resource; the grant keeps them (step-up union). */
  alreadyGranted: string[]
}

/**
 * Decides whether to ask. Consent is remembered per person, client and resource; a later request
 * for more scopes asks only about the new ones (MCP 2025-11-25 incremental scope consent).
 */
export async function planConsent(
  deps: ConsentDeps,
  userId: string,
  request: AuthorizationRequest,
): Promise<ConsentPlan> {
  const remembered = await deps.grants.rememberedScopes(userId, request.clientId, request.resource)
  const alreadyGranted = remembered ?? []
  const newScopes = request.scopes.filter((s) => !alreadyGranted.includes(s))
  return {
    // Authorization details are one transaction's: they are always asked about (RFC 9396 §4).
    ask:
      remembered === null ||
      newScopes.length > 0 ||
      request.prompt.includes('consent') ||
      (request.authorizationDetails?.length ?? 0) > 0,
    newScopes,
    alreadyGranted,
  }
}

/** The warnings the consent page shows about where the answer goes. */
export interface RedirectWarnings {
  /** The host the person is sent back to (or the app's scheme for a native app). */
  redirectHost: string
  /** The client_id's host, when it differs from the redirect host (URL client ids only). */
  otherClientHost: string | null
  /** True when every redirect URI the client has is on this computer. */
  loopbackOnly: boolean
}

/**
 * MCP security considerations: the AS MUST show the redirect URI's host and SHOULD warn when a
 * client has only localhost redirects; a URL client id whose redirect lives elsewhere is flagged.
 */
export function redirectWarnings(client: Client, redirectUri: string): RedirectWarnings {
  const url = new URL(redirectUri)
  const redirectHost = url.host || url.protocol.replace(/:$/, '')
  let otherClientHost: string | null = null
  try {
    const id = new URL(client.clientId)
    if ((id.protocol === 'https:' || id.protocol === 'http:') && id.hostname !== url.hostname)
      otherClientHost = id.host
  } catch {
    // A plain client id (not a URL) says nothing about where the client lives.
  }
  const loopbackOnly =
    client.redirectUris.length > 0 &&
    client.redirectUris.every((uri) => {
      try {
        return isLoopbackRedirect(new URL(uri))
      } catch {
        return false
      }
    })
  return { redirectHost, otherClientHost, loopbackOnly }
}

/**
 * The authorization response URL: the redirect URI with the parameters appended to its query,
 * keeping any query it already has byte for byte (RFC 6749 §3.1.2), plus `iss` (RFC 9207 §2).
 */
export function authorizationResponseUrl(
  redirectUri: string,
  issuer: string,
  params: Record<string, string | null | undefined>,
): string {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined) query.append(name, value)
  }
  query.append('iss', issuer)
  return `${redirectUri}${redirectUri.includes('?') ? '&' : '?'}${query.toString()}`
}

function personActor(user: User): Actor {
  return { type: 'user', id: user.id, label: user.email }
}

function clientActor(client: Client): Actor {
  return { type: 'client', id: client.clientId, label: client.name }
}

/**
 * Approves a request: remembers any new consent (the union), starts a grant covering the union
 * of what is requested and what was agreed to before for this resource (MCP step-up: the client
 * asks for the union, and a narrower request does not silently drop earlier consent), and issues
 * a code. Returns the redirect URL carrying the code, `state` and `iss`.
 */
export async function approveAuthorization(
  deps: ConsentDeps,
  input: {
    user: User
    client: Client
    resource: Resource
    request: AuthorizationRequest
    authTime: number
    /** True when the person just pressed Allow (a consent to record), false when remembered. */
    consented: boolean
    /** When remembered: the scopes `planConsent` just read (`alreadyGranted`), not read again. */
    remembered?: string[]
    requestId: string | null
  },
): Promise<string> {
  const { user, client, resource, request } = input
  // A consent just given is remembered in one commit with its consent.granted record.
  const agreed = input.consented
    ? await deps.grants.rememberConsentWith(
        user.id,
        client.clientId,
        resource.uri,
        request.scopes,
        (consentedScopes) => ({
          type: 'consent.granted',
          actor: personActor(user),
          target: { type: 'client', id: client.clientId },
          decision: 'allow',
          requestId: input.requestId,
          data: {
            resource: resource.uri,
            scopes: request.scopes,
            consentedScopes,
            ...(request.authorizationDetails && {
              authorizationDetailTypes: request.authorizationDetails.map((d) => d.type),
            }),
          },
        }),
      )
    : (input.remembered ??
      (await deps.grants.consentedScopes(user.id, client.clientId, resource.uri)))
  // Scopes the resource has since dropped are not handed out again.
  const scopes = [...new Set([...agreed, ...request.scopes])]
    .filter((s) => s in resource.scopes || OIDC_SCOPES.has(s))
    .sort()
  const { grant, write: grantRow } = deps.grants.prepare({
    userId: user.id,
    clientId: client.clientId,
    resource: resource.uri,
    scopes,
    redirectUri: request.redirectUri,
    agreedText: scopes.map((scope) => ({ scope, sentence: scopeSentence(resource, scope) })),
    ...(request.authorizationDetails && {
      authorizationDetails: request.authorizationDetails,
    }),
  })
  const { code, write: codeRow } = deps.authorizationCodes.prepareIssue({
    grantId: grant.id,
    clientId: client.clientId,
    userId: user.id,
    redirectUri: request.redirectUri,
    codeChallenge: request.codeChallenge,
    resource: resource.uri,
    scopes,
    nonce: request.nonce,
    authTime: input.authTime,
  })
  // The grant, its code and the record of the code commit together in the audit chain's group
  // commit: one durable commit (on a SQLite file in the writer thread, off the event loop), and
  // a code never exists without its record, nor a record of a code that was not stored.
  await deps.audit.appendWith(
    {
      type: 'code.issued',
      actor: clientActor(client),
      onBehalfOf: personActor(user),
      target: { type: 'grant', id: grant.id },
      decision: 'allow',
      requestId: input.requestId,
      data: { client: client.clientId, user: user.id, resource: resource.uri, scopes },
    },
    { writes: [grantRow, codeRow] },
  )
  return authorizationResponseUrl(request.redirectUri, deps.config.issuer, {
    code,
    state: request.state,
  })
}

/** Records a refusal and returns the `access_denied` redirect (RFC 6749 §4.1.2.1). */
export async function denyAuthorization(
  deps: ConsentDeps,
  input: { user: User; client: Client; request: AuthorizationRequest; requestId: string | null },
): Promise<string> {
  const { user, client, request } = input
  await deps.audit.append({
    type: 'consent.denied',
    actor: personActor(user),
    target: { type: 'client', id: client.clientId },
    decision: 'deny',
    requestId: input.requestId,
    data: { resource: request.resource, scopes: request.scopes },
  })
  return authorizationResponseUrl(request.redirectUri, deps.config.issuer, {
    error: 'access_denied',
    error_description: 'The person declined the request.',
    state: request.state,
  })
}
