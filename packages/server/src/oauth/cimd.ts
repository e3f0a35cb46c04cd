import { z } from 'zod'
import { SafeFetchError, type SafeFetchOptions, safeFetch } from '../lib/safe-fetch.js'
import { redirectUriProblem } from './redirect-uris.js'

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25
// "Client Registration"): a client is named by an https URL, and the JSON document at that URL
// is its registration.

/** How long a document is trusted when its answer says nothing about caching. */
export const DEFAULT_METADATA_TTL_SECONDS = 3600
/** The longest a document is trusted, whatever its Cache-Control says. */
export const MAX_METADATA_TTL_SECONDS = 24 * 3600
/**
 * The shortest: a document that asks not to be cached is still kept this long, so one sign-in
 * (authorize, consent, token) does not fetch it three times, and a flood of requests naming the
 * same URL cannot turn Deputy into a fetch amplifier.
 */
export const MIN_METADATA_TTL_SECONDS = 60

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]'])

/** True when a `client_id` is a URL, so it names a metadata document and not a stored client. */
export function isClientIdUrl(clientId: string): boolean {
  return /^https?:\/\//i.test(clientId)
}

/**
 * CIMD §3: the client identifier URL MUST use https, MUST have a path, MUST NOT have dot segments,
 * a fragment or user information. Plain http is accepted only for loopback hosts and only with the
 * development setting. Returns the problem, or null.
 */
export function clientIdUrlProblem(clientId: string, allowHttpLoopback: boolean): string | null {
  let url: URL
  try {
    url = new URL(clientId)
  } catch {
    return 'client_id is not a valid URL'
  }
  if (url.protocol === 'http:') {
    if (!allowHttpLoopback) return 'client_id URL must use https'
    if (!LOOPBACK_NAMES.has(url.hostname)) return 'client_id URL may use http only on loopback'
  } else if (url.protocol !== 'https:') return 'client_id URL must use https'
  if (url.username || url.password) return 'client_id URL must not contain user information'
  if (clientId.includes('#')) return 'client_id URL must not contain a fragment'
  if (url.pathname === '/' || url.pathname === '') return 'client_id URL must have a path'
  // The parser removes dot segments (also %2e%2e), lower-cases the host and drops a default port;
  // the id must already be in that form, so one document has exactly one id.
  if (url.href !== clientId)
    return 'client_id URL is not in normalised form (dot segments, case, default port)'
  return null
}

const HttpsUrl = z.url({ protocol: /^https$/, error: 'must be an https URL' })

/**
 * The document. Unknown fields are allowed (the document is a spec document, not our input), but
 * the fields Deputy uses are checked; shared secrets are refused because anyone can read the
 * document (CIMD §4.1).
 */
export const ClientMetadataDocumentSchema = z
  .looseObject({
    client_id: z.string(),
    client_name: z.string().trim().min(1, 'must not be empty').max(200),
    redirect_uris: z.array(z.string()).min(1, 'must list at least one URI').max(20),
    token_endpoint_auth_method: z
      .enum(['none', 'private_key_jwt'], {
        error: 'must be "none" or "private_key_jwt" (a public document cannot hold a secret)',
      })
      .default('none'),
    grant_types: z
      .array(
        z.enum(['authorization_code', 'refresh_token', 'client_credentials'], {
          error: 'may list authorization_code, refresh_token and client_credentials',
        }),
      )
      .optional(),
    response_types: z.array(z.literal('code', { error: 'may only list "code"' })).optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    // http is refused by the fetch guard (except loopback with the development setting).
    jwks_uri: z.url({ protocol: /^https?$/, error: 'must be an https URL' }).optional(),
    client_uri: HttpsUrl.optional(),
    logo_uri: HttpsUrl.optional(),
    application_type: z.enum(['web', 'native']).optional(),
    client_secret: z.never({ error: 'must not be present (the document is public)' }).optional(),
    client_secret_expires_at: z.never({ error: 'must not be present' }).optional(),
  })
  .superRefine((doc, ctx) => {
    // RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
    if (doc.jwks && doc.jwks_uri)
      ctx.addIssue({
        code: 'custom',
        path: ['jwks'],
        message: 'and jwks_uri must not both be present',
      })
    if (doc.token_endpoint_auth_method === 'private_key_jwt' && !doc.jwks && !doc.jwks_uri)
      ctx.addIssue({
        code: 'custom',
        path: ['jwks'],
        message: 'or jwks_uri is required for private_key_jwt',
      })
    if (
      doc.grant_types?.includes('client_credentials') &&
      doc.token_endpoint_auth_method === 'none'
    )
      ctx.addIssue({
        code: 'custom',
        path: ['grant_types'],
        message: 'client_credentials needs private_key_jwt',
      })
    doc.redirect_uris.forEach((uri, i) => {
      const problem = redirectUriProblem(uri)
      if (problem) ctx.addIssue({ code: 'custom', path: ['redirect_uris', i], message: problem })
    })
  })
export type ClientMetadataDocument = z.output<typeof ClientMetadataDocumentSchema>

/** A document that was fetched and checked, and how long it may be trusted. */
export interface FetchedClientMetadata {
  document: ClientMetadataDocument
  ttlSeconds: number
}

/** Why a metadata document was not accepted; `reason` is for the audit chain, never the caller. */
export class ClientMetadataRefused extends Error {
  readonly reason: string
  constructor(reason: string) {
    super(reason)
    this.name = 'ClientMetadataRefused'
    this.reason = reason
  }
}

/** RFC 9111 §5.2.2: max-age (no-store and no-cache mean "as short as allowed"), capped both ways. */
export function metadataTtlSeconds(cacheControl: string | undefined): number {
  const directives = (cacheControl ?? '').toLowerCase()
  let ttl = DEFAULT_METADATA_TTL_SECONDS
  if (/(^|[\s,])(no-store|no-cache)([\s,=]|$)/.test(directives)) ttl = 0
  else {
    const maxAge = /(^|[\s,])max-age\s*=\s*"?(\d+)"?/.exec(directives)
    if (maxAge?.[2] !== undefined) ttl = Number(maxAge[2])
  }
  return Math.min(MAX_METADATA_TTL_SECONDS, Math.max(MIN_METADATA_TTL_SECONDS, ttl))
}

/**
 * Fetches and checks the document a URL-formatted `client_id` names (through the SSRF guard):
 * the URL must be acceptable, the answer a 200 JSON document whose `client_id` is exactly the URL
 * (CIMD §4.1; MCP: "MUST validate"), with a name and valid redirect URIs.
 */
export async function fetchClientMetadataDocument(
  clientId: string,
  options: SafeFetchOptions,
): Promise<FetchedClientMetadata> {
  const urlProblem = clientIdUrlProblem(clientId, options.allowHttpLoopback === true)
  if (urlProblem) throw new ClientMetadataRefused(urlProblem)
  let response: Awaited<ReturnType<typeof safeFetch>>
  try {
    response = await safeFetch(clientId, options)
  } catch (err) {
    throw new ClientMetadataRefused(
      err instanceof SafeFetchError ? err.reason : `fetch failed: ${String(err)}`,
    )
  }
  if (response.status !== 200)
    throw new ClientMetadataRefused(`document URL answered ${response.status}`)
  let json: unknown
  try {
    json = JSON.parse(response.body)
  } catch {
    throw new ClientMetadataRefused('document is not valid JSON')
  }
  const parsed = ClientMetadataDocumentSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue?.path.join('.')
    throw new ClientMetadataRefused(
      field ? `document field ${field} ${issue?.message}` : `document ${issue?.message}`,
    )
  }
  if (parsed.data.client_id !== clientId)
    throw new ClientMetadataRefused('document client_id does not equal its URL')
  return {
    document: parsed.data,
    ttlSeconds: metadataTtlSeconds(response.headers['cache-control']),
  }
}
