import { isIP } from 'node:net'
import * as oidc from 'openid-client'
import { z } from 'zod'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import { isLoopbackAddress, isPublicAddress } from '../lib/safe-fetch.js'
import type { Store } from '../store/db.js'
import type { ProvidersTable } from '../store/schema.js'
import { CATALOGUE, PROVIDER_TYPES } from './catalogue.js'
import { upstreamProfile } from './profile.js'
import { createConfigurations, toProviderError, toUpstreamTokens } from './protocol.js'
import { revokeUpstream } from './revoke.js'
import type {
  AddProviderInput,
  Provider,
  ProviderEndpoints,
  Providers,
  ProviderType,
  ProviderUse,
  UpdateProviderInput,
} from './types.js'
import { createUpstreamFetch, type UpstreamFetch } from './upstream-fetch.js'

/** What the registry needs. */
export interface ProvidersDeps {
  store: Store
  clock: Clock
  audit: AuditLog
  sealer: Sealer
  /** `dangerouslyAllowHttpLoopbackProviders`: providers on http://127.0.0.1 (development only). */
  allowHttpLoopback?: boolean
  /** Replaces the SSRF-guarded fetch's options (tests: a shorter deadline). */
  fetch?: UpstreamFetch
}

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/
const ENDPOINT_KEYS = [
  'authorization_endpoint',
  'token_endpoint',
  'userinfo_endpoint',
  'revocation_endpoint',
  'jwks_uri',
  'user_api',
  'emails_api',
] as const

const secretAad = (name: string) => `providers:${name}:client_secret`

function invalid(message: string): DeputyError {
  return new DeputyError('ERR_INVALID_INPUT', message)
}

const Uses = z.array(z.enum(['sign-in', 'connect'])).min(1, 'needs sign-in, connect or both')
const Strings = z.array(z.string().trim().min(1).max(200)).max(100)

function toProvider(row: ProvidersTable): Provider {
  return {
    name: row.name,
    type: row.type,
    displayName: row.display_name,
    clientId: row.client_id,
    hasClientSecret: row.client_secret_sealed !== null,
    issuer: row.issuer,
    endpoints: JSON.parse(row.endpoints) as ProviderEndpoints,
    uses: JSON.parse(row.uses) as ProviderUse[],
    scopes: JSON.parse(row.scopes) as string[],
    defaultRoles: JSON.parse(row.default_roles) as string[],
    allowedClients: JSON.parse(row.allowed_clients) as string[],
    status: row.status,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
  }
}

/**
 * The upstream provider registry and the protocol to each provider (issue 12 §1). OpenID types
 * are discovered once, when added (or their issuer changes), and their endpoints stored: signing
 * in never waits for a discovery document, and an operator's override of any endpoint wins.
 */
export function createProviders(deps: ProvidersDeps): Providers {
  const db = deps.store.db
  const allowHttpLoopback = deps.allowHttpLoopback === true
  const fetch = deps.fetch ?? createUpstreamFetch({ allowHttpLoopback })

  async function clientSecret(name: string): Promise<string | null> {
    const row = await db
      .selectFrom('providers')
      .select('client_secret_sealed')
      .where('name', '=', name)
      .executeTakeFirst()
    if (!row?.client_secret_sealed) return null
    return deps.sealer.open(row.client_secret_sealed, secretAad(name))
  }
  const { configuration } = createConfigurations({
    fetch,
    clientSecret,
    allowHttpLoopback,
    now: () => deps.clock.now().getTime(),
  })

  /** https only (http to loopback with the development setting); no private IP literals. */
  function checkUrl(value: string, field: string): string {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      throw invalid(`${field} must be an absolute URL`)
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const loopback = isIP(host) !== 0 ? isLoopbackAddress(host) : host === 'localhost'
    if (url.protocol === 'http:' && !(allowHttpLoopback && loopback))
      throw invalid(`${field} must be https (${value})`)
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw invalid(`${field} must be https (${value})`)
    if (isIP(host) !== 0 && !isPublicAddress(host) && !(allowHttpLoopback && loopback))
      throw invalid(`${field} is not on a public address (${value})`)
    if (url.username || url.password || url.hash)
      throw invalid(`${field} must not carry user information or a fragment`)
    return value
  }

  function checkOverrides(input: Partial<ProviderEndpoints> | undefined) {
    const out: Partial<ProviderEndpoints> = {}
    for (const key of ENDPOINT_KEYS) {
      const value = input?.[key]
      if (value !== undefined && value !== '') out[key] = checkUrl(value, key)
    }
    return out
  }

  /** OpenID discovery through the guarded fetch; the discovered issuer must be the configured one. */
  async function discover(type: ProviderType, issuer: string, clientId: string) {
    let config: oidc.Configuration
    try {
      config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.None(), {
        [oidc.customFetch]: fetch.customFetch,
        execute: allowHttpLoopback ? [oidc.allowInsecureRequests] : [],
      })
    } catch (err) {
      const e = toProviderError(err)
      throw invalid(`discovery at ${issuer} failed: ${e.message}`)
    }
    const m = config.serverMetadata()
    const expected = new URL(issuer).href
    const entraTemplate =
      type === 'microsoft' &&
      /^https:\/\/login\.microsoftonline\.com\/(common|organizations)\/v2\.0\/?$/.test(issuer) &&
      m.issuer === 'https://login.microsoftonline.com/{tenantid}/v2.0'
    // openid-client lets Azure B2C mismatch through as well; Deputy takes only Entra's template.
    if (new URL(m.issuer).href !== expected && !entraTemplate)
      throw invalid(`discovered issuer ${m.issuer} is not the configured issuer ${issuer}`)
    if (!m.authorization_endpoint || !m.token_endpoint)
      throw invalid(`discovery at ${issuer} names no authorization or token endpoint`)
    const endpoints: ProviderEndpoints = {
      authorization_endpoint: m.authorization_endpoint,
      token_endpoint: m.token_endpoint,
      ...(m.userinfo_endpoint && { userinfo_endpoint: m.userinfo_endpoint }),
      ...(m.revocation_endpoint && { revocation_endpoint: m.revocation_endpoint }),
      ...(m.jwks_uri && { jwks_uri: m.jwks_uri }),
      ...(m.authorization_response_iss_parameter_supported === true && {
        authorization_response_iss_parameter_supported: true,
      }),
      ...(Array.isArray(m.id_token_signing_alg_values_supported) && {
        id_token_signing_alg_values_supported: m.id_token_signing_alg_values_supported,
      }),
    }
    return endpoints
  }

  /** The endpoints of a provider: the catalogue's or discovery's, then the operator's overrides. */
  async function resolveEndpoints(
    type: ProviderType,
    issuer: string | null,
    clientId: string,
    overrides: Partial<ProviderEndpoints>,
  ): Promise<ProviderEndpoints> {
    const base = issuer ? await discover(type, issuer, clientId) : CATALOGUE[type].endpoints
    const merged = { ...base, ...overrides } as Partial<ProviderEndpoints>
    if (!merged.authorization_endpoint || !merged.token_endpoint)
      throw invalid(`a ${type} provider needs --authorization-endpoint and --token-endpoint`)
    for (const key of ENDPOINT_KEYS) {
      const value = merged[key]
      if (value !== undefined) checkUrl(value, key)
    }
    return merged as ProviderEndpoints
  }

  function checkUses(type: ProviderType, uses: ProviderUse[], endpoints: ProviderEndpoints) {
    if (type === 'oauth2' && uses.includes('sign-in') && !endpoints.userinfo_endpoint)
      throw invalid(
        'an oauth2 provider without --userinfo-endpoint cannot sign people in: nothing says who the account is (use connect only)',
      )
  }

  function scopesOf(value: string[] | undefined, type: ProviderType): string[] {
    const scopes = value ?? CATALOGUE[type].scopes
    for (const scope of scopes) if (!SCOPE.test(scope)) throw invalid(`scope "${scope}" is invalid`)
    return [...new Set(scopes)]
  }

  function list(value: unknown, field: string): string[] {
    const parsed = Strings.safeParse(value)
    if (!parsed.success) throw invalid(`${field} must be a list of names`)
    return [...new Set(parsed.data)]
  }

  async function get(name: string): Promise<Provider | null> {
    const row = await db
      .selectFrom('providers')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst()
    return row ? toProvider(row) : null
  }

  async function mustGet(name: string): Promise<Provider> {
    const found = await get(name)
    if (!found) throw new DeputyError('ERR_NOT_FOUND', `no provider named ${name}`)
    return found
  }

  const auditData = (p: Provider) => ({
    type: p.type,
    clientId: p.clientId,
    issuer: p.issuer,
    uses: p.uses,
    scopes: p.scopes,
    allowedClients: p.allowedClients,
    defaultRoles: p.defaultRoles,
  })

  return {
    get,

    async list() {
      const rows = await db.selectFrom('providers').selectAll().orderBy('name').execute()
      return rows.map(toProvider)
    },

    async add(input: AddProviderInput, actor: Actor) {
      if (typeof input.name !== 'string' || !NAME.test(input.name))
        throw invalid('name must be 1-40 of a-z, 0-9 and "-", starting with a letter or digit')
      if (!PROVIDER_TYPES.includes(input.type))
        throw invalid(`type must be one of ${PROVIDER_TYPES.join(', ')}`)
      const entry = CATALOGUE[input.type]
      const clientId = typeof input.clientId === 'string' ? input.clientId.trim() : ''
      if (!clientId || clientId.length > 500) throw invalid('client id is required')
      if (input.clientSecret !== undefined && typeof input.clientSecret !== 'string')
        throw invalid('client secret must be a string')
      let issuer: string | null = null
      if (entry.openid) {
        issuer = input.issuer ?? entry.issuer ?? null
        if (!issuer) throw invalid(`a ${input.type} provider needs --issuer`)
        checkUrl(issuer, 'issuer')
      } else if (input.issuer !== undefined) {
        throw invalid(`a ${input.type} provider has no issuer (it is plain OAuth 2.0)`)
      }
      if (await get(input.name))
        throw new DeputyError('ERR_CONFLICT', `a provider named ${input.name} already exists`)
      const overrides = checkOverrides(input.endpoints)
      const endpoints = await resolveEndpoints(input.type, issuer, clientId, overrides)
      // Default: both uses, but an oauth2 provider without userinfo can only connect.
      const defaultUses: ProviderUse[] =
        input.type === 'oauth2' && !endpoints.userinfo_endpoint
          ? ['connect']
          : ['sign-in', 'connect']
      const usesParsed = Uses.safeParse(input.uses ?? defaultUses)
      if (!usesParsed.success) throw invalid('uses must be sign-in, connect or both')
      checkUses(input.type, usesParsed.data, endpoints)
      const now = deps.clock.now().getTime()
      const secret = input.clientSecret?.trim() ? input.clientSecret.trim() : null
      await db
        .insertInto('providers')
        .values({
          name: input.name,
          type: input.type,
          display_name: input.displayName?.trim() || entry.displayName,
          client_id: clientId,
          client_secret_sealed: secret ? deps.sealer.seal(secret, secretAad(input.name)) : null,
          issuer,
          endpoints: JSON.stringify(endpoints),
          uses: JSON.stringify([...new Set(usesParsed.data)]),
          scopes: JSON.stringify(scopesOf(input.scopes, input.type)),
          default_roles: JSON.stringify(list(input.defaultRoles ?? [], 'default roles')),
          allowed_clients: JSON.stringify(list(input.allowedClients ?? [], 'allowed clients')),
          status: 'active',
          created_at: now,
          updated_at: now,
        })
        .execute()
      const provider = await mustGet(input.name)
      await deps.audit.append({
        type: 'provider.added',
        actor,
        target: { type: 'provider', id: provider.name },
        data: { ...auditData(provider), hasClientSecret: provider.hasClientSecret },
      })
      return provider
    },

    async update(name: string, input: UpdateProviderInput, actor: Actor) {
      const current = await mustGet(name)
      const entry = CATALOGUE[current.type]
      const changed = Object.keys(input).filter(
        (k) => (input as Record<string, unknown>)[k] !== undefined,
      )
      if (input.issuer !== undefined && !entry.openid)
        throw invalid(`a ${current.type} provider has no issuer (it is plain OAuth 2.0)`)
      const issuer = input.issuer !== undefined ? checkUrl(input.issuer, 'issuer') : current.issuer
      const clientId = input.clientId?.trim() || current.clientId
      const overrides = checkOverrides(input.endpoints)
      // A new issuer is discovered afresh; otherwise the stored endpoints take the overrides.
      const endpoints =
        issuer !== current.issuer
          ? await resolveEndpoints(current.type, issuer, clientId, overrides)
          : { ...current.endpoints, ...overrides }
      const usesParsed = Uses.safeParse(input.uses ?? current.uses)
      if (!usesParsed.success) throw invalid('uses must be sign-in, connect or both')
      checkUses(current.type, usesParsed.data, endpoints)
      const values: Partial<ProvidersTable> = {
        display_name: input.displayName?.trim() || current.displayName,
        client_id: clientId,
        issuer,
        endpoints: JSON.stringify(endpoints),
        uses: JSON.stringify([...new Set(usesParsed.data)]),
        scopes: JSON.stringify(scopesOf(input.scopes ?? current.scopes, current.type)),
        default_roles: JSON.stringify(list(input.defaultRoles ?? current.defaultRoles, 'roles')),
        allowed_clients: JSON.stringify(
          list(input.allowedClients ?? current.allowedClients, 'allowed clients'),
        ),
        updated_at: Math.max(deps.clock.now().getTime(), Date.parse(current.updatedAt) + 1),
      }
      if (input.clientSecret !== undefined) {
        const secret = input.clientSecret.trim()
        values.client_secret_sealed = secret ? deps.sealer.seal(secret, secretAad(name)) : null
      }
      await db.updateTable('providers').set(values).where('name', '=', name).execute()
      const provider = await mustGet(name)
      await deps.audit.append({
        type: 'provider.updated',
        actor,
        target: { type: 'provider', id: name },
        data: { ...auditData(provider), changed: changed.sort() },
      })
      return provider
    },

    async setStatus(name: string, status: 'active' | 'disabled', actor: Actor) {
      const current = await mustGet(name)
      if (current.status === status) return current
      await db
        .updateTable('providers')
        .set({ status, updated_at: deps.clock.now().getTime() })
        .where('name', '=', name)
        .execute()
      await deps.audit.append({
        type: status === 'disabled' ? 'provider.disabled' : 'provider.enabled',
        actor,
        target: { type: 'provider', id: name },
      })
      return mustGet(name)
    },

    async remove(name: string, actor: Actor) {
      const result = await db.deleteFrom('providers').where('name', '=', name).executeTakeFirst()
      if (Number(result.numDeletedRows) === 0)
        throw new DeputyError('ERR_NOT_FOUND', `no provider named ${name}`)
      await deps.audit.append({
        type: 'provider.removed',
        actor,
        target: { type: 'provider', id: name },
      })
    },

    async authorizationUrl(provider, request) {
      const entry = CATALOGUE[provider.type]
      const config = await configuration(provider)
      const parameters: Record<string, string> = {
        response_type: 'code',
        redirect_uri: request.redirectUri,
        state: request.state,
        // RFC 9700 §2.1.1: PKCE with S256, also for confidential clients.
        code_challenge: await oidc.calculatePKCECodeChallenge(request.codeVerifier),
        code_challenge_method: 'S256',
      }
      if (request.scopes.length > 0) parameters[entry.scopeParameter] = request.scopes.join(' ')
      if (entry.openid) parameters.nonce = request.nonce
      return oidc.buildAuthorizationUrl(config, parameters)
    },

    async redeemCallback(provider, callback) {
      const entry = CATALOGUE[provider.type]
      const config = await configuration(provider)
      // The exact registered redirect URI with the provider's answer, whatever host the
      // request reached us by (openid-client sends currentUrl without its query as redirect_uri).
      const url = new URL(callback.redirectUri)
      url.search = callback.currentUrl.search
      try {
        const answer = await oidc.authorizationCodeGrant(config, url, {
          expectedState: callback.expectedState,
          pkceCodeVerifier: callback.codeVerifier,
          ...(entry.openid && { expectedNonce: callback.nonce, idTokenExpected: true }),
        })
        return toUpstreamTokens(answer, deps.clock.now().getTime(), {
          scopes: [],
          refreshToken: null,
        })
      } catch (err) {
        throw toProviderError(err)
      }
    },

    profile(provider, tokens) {
      return upstreamProfile({ fetch, configuration }, provider, tokens)
    },

    async refresh(provider, refreshToken, scopes) {
      const config = await configuration(provider)
      try {
        const answer = await oidc.refreshTokenGrant(
          config,
          refreshToken,
          scopes && scopes.length > 0 ? { scope: scopes.join(' ') } : undefined,
        )
        return toUpstreamTokens(answer, deps.clock.now().getTime(), {
          scopes: scopes ?? [],
          refreshToken,
        })
      } catch (err) {
        throw toProviderError(err)
      }
    },

    revoke(provider, tokens) {
      return revokeUpstream({ fetch, configuration, clientSecret }, provider, tokens)
    },
  }
}
