import { z } from 'zod'
import type { Actor, AuditLog } from '../audit/types.js'
import { parseInput } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import { createTtlCache } from '../lib/ttl-cache.js'
import type { Store } from '../store/db.js'
import type { ResourceRow } from '../store/schema.js'
import { OAuthError } from './errors.js'

/** A protected resource (an MCP server or API) that tokens are minted for. */
export interface Resource {
  /** The resource indicator: what clients send as `resource` and what tokens carry as `aud`. */
  uri: string
  name: string
  /** Scope → the sentence the consent page shows. */
  scopes: Record<string, string>
  /** The person's claims copied into access tokens for this resource (e.g. `email`, `favorite_song`). */
  claimsTemplate: string[]
  isDefault: boolean
}

/**
 * RFC 8707 §2: an absolute URI without a fragment. Deputy also requires http(s), and keeps the URI
 * exactly as registered: clients must send the same string (no normalisation, so no confusion).
 */
export const ResourceUriSchema = z.string().refine((v) => {
  try {
    const url = new URL(v)
    return (url.protocol === 'https:' || url.protocol === 'http:') && !v.includes('#')
  } catch {
    return false
  }
}, 'must be an absolute http(s) URI without a fragment')

export const ScopeNameSchema = z
  .string()
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/, 'is not a valid scope name')

/** Claims every access token carries from Deputy itself (RFC 9068 §2.2 and ours): never copied from a person. */
const PROTOCOL_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'scope',
  'client_id',
  'cnf',
  'act',
  'may_act',
  'grant_id',
  'approval_id',
  'authorization_details',
])

/** A claim a resource's tokens copy from the person: `email`, `favorite_song`. */
export const ClaimNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1–64 letters, digits or _ . : -')
  .refine(
    (name) => !PROTOCOL_CLAIMS.has(name),
    'is set by Deputy in every token and cannot be copied',
  )

export interface AddResourceInput {
  uri: string
  name?: string
  scopes: Record<string, string>
  claimsTemplate?: string[]
  isDefault?: boolean
}

function toResource(row: ResourceRow, scopes: { scope: string; description: string }[]): Resource {
  return {
    uri: row.uri,
    name: row.name,
    scopes: Object.fromEntries(scopes.map((s) => [s.scope, s.description])),
    claimsTemplate: JSON.parse(row.claims_template) as string[],
    isDefault: row.is_default === 1,
  }
}

/** How long a resource as read is reused at most (changes through Deputy drop it at once). */
export const RESOURCE_CACHE_MS = 2_000

/** The key under which the cache keeps the default resource's URI (no URI is empty). */
const DEFAULT_KEY = ''

/**
 * The resources registry: register, list, find, and resolve a request's `resource`. Lookups are
 * cached for `cacheMs` (default 2 s, 0 turns it off) and dropped when any process changes a
 * resource (store/invalidations.ts: at once, or within `cacheCheckIntervalMs`).
 */
export function createResources(deps: {
  store: Store
  clock: Clock
  audit: AuditLog
  cacheMs?: number
}) {
  const db = deps.store.db
  /** Resources by URI (null: known not to exist), and under DEFAULT_KEY the default's URI. */
  const cache = createTtlCache<string, Resource | string | null>(deps.cacheMs ?? RESOURCE_CACHE_MS)
  // Any resource changed anywhere may change the default too: drop them all (few, cheap to read).
  deps.store.invalidations.subscribe('resources', () => cache.clear())

  async function get(uri: string): Promise<Resource | undefined> {
    if (uri === DEFAULT_KEY) return undefined
    const hit = cache.get(uri)
    if (hit !== undefined) return (hit as Resource | null) ?? undefined
    const stamp = cache.stamp()
    const resource = await read(uri)
    cache.set(uri, resource ?? null, stamp)
    return resource
  }

  async function defaultUri(): Promise<string | undefined> {
    const hit = cache.get(DEFAULT_KEY)
    if (hit !== undefined) return (hit as string | null) ?? undefined
    const stamp = cache.stamp()
    const row = await db
      .selectFrom('resources')
      .select('uri')
      .where('is_default', '=', 1)
      .executeTakeFirst()
    cache.set(DEFAULT_KEY, row?.uri ?? null, stamp)
    return row?.uri
  }

  async function read(uri: string): Promise<Resource | undefined> {
    const row = await db
      .selectFrom('resources')
      .selectAll()
      .where('uri', '=', uri)
      .executeTakeFirst()
    if (!row) return undefined
    const scopes = await db
      .selectFrom('resource_scopes')
      .select(['scope', 'description'])
      .where('resource_uri', '=', uri)
      .orderBy('scope')
      .execute()
    return toResource(row, scopes)
  }

  return {
    get,

    async list(): Promise<Resource[]> {
      const rows = await db.selectFrom('resources').selectAll().orderBy('uri').execute()
      const scopes = await db.selectFrom('resource_scopes').selectAll().orderBy('scope').execute()
      return rows.map((r) =>
        toResource(
          r,
          scopes.filter((s) => s.resource_uri === r.uri),
        ),
      )
    },

    /** Registers a resource, or replaces its name, scopes and claims template. */
    async put(input: AddResourceInput, actor: Actor): Promise<Resource> {
      const uri = parseInput(ResourceUriSchema, input.uri, 'resource')
      for (const scope of Object.keys(input.scopes))
        parseInput(ScopeNameSchema, scope, `scope "${scope}"`)
      for (const claim of input.claimsTemplate ?? [])
        parseInput(ClaimNameSchema, claim, `claim "${claim}"`)
      for (const [scope, description] of Object.entries(input.scopes)) {
        if (!description.trim()) {
          throw new DeputyError(
            'ERR_INVALID_INPUT',
            `scope "${scope}" needs a sentence for the consent page`,
          )
        }
        if (description.length > 500)
          throw new DeputyError(
            'ERR_INVALID_INPUT',
            `the sentence of scope "${scope}" must be at most 500 characters`,
          )
      }
      if ((input.name ?? '').length > 200)
        throw new DeputyError('ERR_INVALID_INPUT', 'name must be at most 200 characters')
      const now = deps.clock.now().getTime()
      const name = input.name?.trim() || new URL(uri).host
      await db.transaction().execute(async (trx) => {
        if (input.isDefault) await trx.updateTable('resources').set({ is_default: 0 }).execute()
        const values = {
          name,
          claims_template: JSON.stringify(input.claimsTemplate ?? []),
          is_default: input.isDefault ? 1 : 0,
          updated_at: now,
        }
        const existing = await trx
          .selectFrom('resources')
          .select('uri')
          .where('uri', '=', uri)
          .executeTakeFirst()
        if (existing)
          await trx.updateTable('resources').set(values).where('uri', '=', uri).execute()
        else
          await trx
            .insertInto('resources')
            .values({ uri, created_at: now, ...values })
            .execute()
        await trx.deleteFrom('resource_scopes').where('resource_uri', '=', uri).execute()
        const scopes = Object.entries(input.scopes)
        if (scopes.length > 0) {
          await trx
            .insertInto('resource_scopes')
            .values(
              scopes.map(([scope, description]) => ({
                resource_uri: uri,
                scope,
                description: description.trim(),
              })),
            )
            .execute()
        }
        await deps.store.invalidations.mark(trx, 'resources')
      })
      await deps.store.invalidations.announce('resources', uri)
      await deps.audit.append({
        type: 'resource.registered',
        actor,
        target: { type: 'resource', id: uri },
        data: {
          scopes: Object.keys(input.scopes).sort(),
          claimsTemplate: input.claimsTemplate ?? [],
          isDefault: !!input.isDefault,
        },
      })
      return (await get(uri)) as Resource
    },

    async remove(uri: string, actor: Actor): Promise<void> {
      const found = await db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom('resources').where('uri', '=', uri).executeTakeFirst()
        if (Number(result.numDeletedRows) === 0) return false
        await deps.store.invalidations.mark(trx, 'resources')
        return true
      })
      if (!found) throw new DeputyError('ERR_NOT_FOUND', `no resource ${uri}`)
      await deps.store.invalidations.announce('resources', uri)
      await deps.audit.append({
        type: 'resource.removed',
        actor,
        target: { type: 'resource', id: uri },
      })
    },

    /**
     * RFC 8707 §2: the `resource` of a request, or the configured default when the client sent
     * none. One resource per grant: an unknown resource, or more than one, is `invalid_target`.
     */
    async resolve(requested: string[]): Promise<Resource> {
      if (requested.length > 1) {
        throw new OAuthError('invalid_target', 'only one resource per request is supported', {
          reason: 'multiple-resources',
        })
      }
      const [uri] = requested
      if (uri === undefined) {
        const fallback = await defaultUri()
        const resource = fallback === undefined ? undefined : await get(fallback)
        if (!resource)
          throw new OAuthError('invalid_target', 'the resource parameter is required', {
            reason: 'no-default-resource',
          })
        return resource
      }
      const resource = await get(uri)
      if (!resource)
        throw new OAuthError('invalid_target', 'the requested resource is unknown', {
          reason: `unknown-resource ${uri}`,
        })
      return resource
    },
  }
}

export type Resources = ReturnType<typeof createResources>
