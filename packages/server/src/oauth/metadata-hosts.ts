import { z } from 'zod'
import type { Actor, AuditLog } from '../audit/types.js'
import { parseInput } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Store } from '../store/db.js'
import { formatScope, parseScope } from './scopes.js'

// Anyone can publish a Client ID Metadata Document, so a document can name a client but never
// give it authority: grants without a person (client credentials) are what an operator allows,
// per host of the document's URL, per resource, with the scopes granted there.

/** One host the operator trusts for machine tokens at one resource. */
export interface MetadataHostGrant {
  /** Lower-case host of the document URLs, with the port when it is not 443. */
  host: string
  resource: string
  scopes: string[]
  createdAt: string
  updatedAt: string
}

/**
 * A host as URL parsing gives it (`tools.example.com`, `127.0.0.1:8443`): no scheme, path,
 * user information or default port, so one host has one spelling and the lookup is exact.
 */
export const MetadataHostSchema = z
  .string()
  .max(260)
  .refine((value) => {
    try {
      return new URL(`https://${value}/`).host === value
    } catch {
      return false
    }
  }, 'must be a lower-case host name with an optional port (no scheme or path)')

/** The host a URL-formatted `client_id` is judged by. */
export function metadataHostOf(clientId: string): string {
  return new URL(clientId).host
}

/** The operator's allow-list of Client ID Metadata Document hosts, per resource. */
export function createMetadataHosts(deps: { store: Store; clock: Clock; audit: AuditLog }) {
  const db = deps.store.db

  function toGrant(row: {
    host: string
    resource: string
    scope: string
    created_at: number
    updated_at: number
  }): MetadataHostGrant {
    return {
      host: row.host,
      resource: row.resource,
      scopes: parseScope(row.scope) ?? [],
      createdAt: new Date(Number(row.created_at)).toISOString(),
      updatedAt: new Date(Number(row.updated_at)).toISOString(),
    }
  }

  async function forHost(host: string): Promise<MetadataHostGrant[]> {
    const rows = await db
      .selectFrom('client_metadata_hosts')
      .selectAll()
      .where('host', '=', host)
      .orderBy('resource')
      .execute()
    return rows.map(toGrant)
  }

  return {
    /** What the operator granted the documents of `host`, one entry per resource. */
    forHost,

    async list(): Promise<MetadataHostGrant[]> {
      const rows = await db
        .selectFrom('client_metadata_hosts')
        .selectAll()
        .orderBy('host')
        .orderBy('resource')
        .execute()
      return rows.map(toGrant)
    },

    /**
     * Lets the metadata-document clients of `host` get client-credentials tokens for `resource`
     * with (at most) `scopes`, replacing what was granted there before. Each scope must be one the
     * resource offers.
     */
    async allow(
      input: { host: string; resource: string; scopes: string[] },
      actor: Actor,
    ): Promise<MetadataHostGrant> {
      const host = parseInput(MetadataHostSchema, input.host, 'host')
      const scopes = [...new Set(input.scopes)]
      if (scopes.length === 0)
        throw new DeputyError('ERR_INVALID_INPUT', 'grant at least one scope (--scope)')
      const offered = await db
        .selectFrom('resource_scopes')
        .select('scope')
        .where('resource_uri', '=', input.resource)
        .execute()
      const known = await db
        .selectFrom('resources')
        .select('uri')
        .where('uri', '=', input.resource)
        .executeTakeFirst()
      if (!known) throw new DeputyError('ERR_NOT_FOUND', `no resource ${input.resource}`)
      const unknown = scopes.filter((s) => !offered.some((o) => o.scope === s))
      if (unknown.length > 0)
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `${input.resource} does not offer the scope ${unknown[0]}`,
        )
      const now = deps.clock.now().getTime()
      const scope = formatScope(scopes)
      await db
        .insertInto('client_metadata_hosts')
        .values({ host, resource: input.resource, scope, created_at: now, updated_at: now })
        .onConflict((oc) =>
          oc.columns(['host', 'resource']).doUpdateSet({ scope, updated_at: now }),
        )
        .execute()
      await deps.audit.append({
        type: 'client-metadata-host.allowed',
        actor,
        target: { type: 'client-metadata-host', id: host },
        decision: 'allow',
        data: { host, resource: input.resource, scopes: scope.split(' ') },
      })
      const [grant] = (await forHost(host)).filter((g) => g.resource === input.resource)
      return grant as MetadataHostGrant
    },

    /** Takes back what `host` was granted: at one resource, or everywhere. Returns how many. */
    async disallow(host: string, resource: string | undefined, actor: Actor): Promise<number> {
      let query = db.deleteFrom('client_metadata_hosts').where('host', '=', host)
      if (resource !== undefined) query = query.where('resource', '=', resource)
      const result = await query.executeTakeFirst()
      const removed = Number(result.numDeletedRows)
      if (removed === 0)
        throw new DeputyError(
          'ERR_NOT_FOUND',
          `${host} is not allowed${resource === undefined ? '' : ` for ${resource}`}`,
        )
      await deps.audit.append({
        type: 'client-metadata-host.disallowed',
        actor,
        target: { type: 'client-metadata-host', id: host },
        data: { host, resource: resource ?? null },
      })
      return removed
    },
  }
}

export type MetadataHosts = ReturnType<typeof createMetadataHosts>
