import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Store } from '../store/db.js'

// Who may act for whom (issue 13 §1, docs/delegation.md): an operator lets a client exchange a
// person's token (RFC 8693 delegation) for tokens to named resources, and, only where said so,
// impersonate there (a token without `act`). A subject token's `may_act` is the other way in.

/** What an operator allowed one client: the resources it may act toward, and how. */
export interface DelegationRule {
  clientId: string
  /** Resource indicators its exchanged tokens may be for, sorted. */
  resources: string[]
  /** True when its exchanged tokens carry no `act`: it stands in for the subject. */
  impersonate: boolean
}

/** The operator's delegation rules, one set per client. */
export function createDelegationRules(deps: { store: Store; clock: Clock; audit: AuditLog }) {
  const db = deps.store.db

  async function forClient(clientId: string): Promise<DelegationRule> {
    const rows = await db
      .selectFrom('delegation_rules')
      .select(['resource', 'impersonate'])
      .where('client_id', '=', clientId)
      .orderBy('resource')
      .execute()
    return {
      clientId,
      resources: rows.map((r) => r.resource),
      impersonate: rows.some((r) => Number(r.impersonate) === 1),
    }
  }

  return {
    /** What the client may do; no resources when the operator allowed it nothing. */
    forClient,

    /** Every client with a rule, by client id. */
    async list(): Promise<DelegationRule[]> {
      const rows = await db
        .selectFrom('delegation_rules')
        .select('client_id')
        .distinct()
        .orderBy('client_id')
        .execute()
      return Promise.all(rows.map((r) => forClient(r.client_id)))
    },

    /**
     * Replaces what the client may do with `resources` (each a registered resource) and the
     * impersonation flag; an empty list clears it. One transaction: a refused resource leaves the
     * rule as it was. Audited as `client.delegation-set` (or `client.delegation-cleared`).
     */
    async set(
      clientId: string,
      input: { resources: readonly string[]; impersonate?: boolean },
      actor: Actor,
    ): Promise<DelegationRule> {
      const resources = [...new Set(input.resources)].sort()
      const impersonate = input.impersonate === true
      if (resources.length === 0 && impersonate)
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'impersonation needs at least one resource (--to)',
        )
      const client = await db
        .selectFrom('clients')
        .select(['client_id', 'token_endpoint_auth_method'])
        .where('client_id', '=', clientId)
        .executeTakeFirst()
      if (!client) throw new DeputyError('ERR_NOT_FOUND', `no client ${clientId}`)
      if (resources.length > 0 && client.token_endpoint_auth_method === 'none')
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `${clientId} is a public client: only a confidential client may act for a person`,
        )
      const now = deps.clock.now().getTime()
      await db.transaction().execute(async (trx) => {
        for (const uri of resources) {
          const known = await trx
            .selectFrom('resources')
            .select('uri')
            .where('uri', '=', uri)
            .executeTakeFirst()
          if (!known) throw new DeputyError('ERR_NOT_FOUND', `no resource ${uri}`)
        }
        await trx.deleteFrom('delegation_rules').where('client_id', '=', clientId).execute()
        if (resources.length > 0)
          await trx
            .insertInto('delegation_rules')
            .values(
              resources.map((resource) => ({
                client_id: clientId,
                resource,
                impersonate: impersonate ? 1 : 0,
                created_at: now,
              })),
            )
            .execute()
      })
      await deps.audit.append({
        type: resources.length > 0 ? 'client.delegation-set' : 'client.delegation-cleared',
        actor,
        target: { type: 'client', id: clientId },
        decision: resources.length > 0 ? 'allow' : null,
        data: { clientId, resources, impersonate },
      })
      return { clientId, resources, impersonate }
    },
  }
}

export type DelegationRules = ReturnType<typeof createDelegationRules>
