import { randomUUID } from 'node:crypto'
import type { CompiledQuery, Insertable, Kysely } from 'kysely'
import type { Actor, AuditEventInput, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Store } from '../store/db.js'
import { reusedStatement } from '../store/reused-statement.js'
import type { Database } from '../store/schema.js'
import { createGrantUse } from './grant-use.js'
import { formatScope, parseScope } from './scopes.js'

function isoOrNull(ms: number | string | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString()
}

/** What one authorization gave one client for one person and one resource. */
export interface Grant {
  id: string
  userId: string
  clientId: string
  resource: string
  scopes: string[]
  createdAt: string
  revokedAt: string | null
}

/** A consent sentence shown for one scope when a grant was made. */
export interface AgreedScope {
  scope: string
  sentence: string
}

/** A grant as the person sees it on "your agents": which client, for what, since when. */
export interface GrantSummary extends Grant {
  clientName: string
  /** ISO times the token endpoint first and last issued tokens under it; null until used. */
  firstUsedAt: string | null
  lastUsedAt: string | null
  /** The sentences the person was shown for its scopes; null for grants from before 0027. */
  agreedText: AgreedScope[] | null
}

/**
 * Rounds a consent may take to commit while others for the same person, client and resource
 * commit first (each round one of them does): far more than people press Allow at once.
 */
const MAX_CONSENT_ATTEMPTS = 50

/** What starts a grant: an approved authorization. */
export interface GrantInput {
  userId: string
  clientId: string
  resource: string
  scopes: string[]
  /** RFC 9396 details the person agreed to, carried into the grant's tokens. */
  authorizationDetails?: readonly Record<string, unknown>[]
  /** The redirect URI the authorization was for (a metadata document may later drop it). */
  redirectUri?: string
  /** What the person was shown for each scope, kept as they read it. */
  agreedText?: readonly AgreedScope[]
}

/**
 * Grants and remembered consents. A consent is what the person agreed to for a client and
 * resource (it grows by union on step-up); a grant is one authorization built on it, which the
 * codes, refresh tokens and access tokens it produced all point to, so revoking it ends them all.
 */
export function createGrants(deps: { store: Store; clock: Clock; audit: AuditLog }) {
  const db = deps.store.db
  const use = createGrantUse({ db, clock: deps.clock })

  // Compiled once: a grant is inserted on every authorization (store/reused-statement.ts).
  const insertGrant = reusedStatement(
    (row: Insertable<Database['grants']>) => db.insertInto('grants').values(row).compile(),
    (row) => Object.values(row),
  )

  // The reads of every flow, compiled once.
  const selectRevokedAt = reusedStatement(
    (id: string) => db.selectFrom('grants').select('revoked_at').where('id', '=', id).compile(),
    (id) => [id],
  )
  const selectDetails = reusedStatement(
    (id: string) =>
      db.selectFrom('grants').select('authorization_details').where('id', '=', id).compile(),
    (id) => [id],
  )
  const selectConsent = reusedStatement(
    (userId: string, clientId: string, resource: string) =>
      db
        .selectFrom('consents')
        .select('scope')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .where('resource', '=', resource)
        .compile(),
    (userId, clientId, resource) => [userId, clientId, resource],
  )

  async function rememberedScopes(
    userId: string,
    clientId: string,
    resource: string,
  ): Promise<string[] | null> {
    const [row] = (await db.executeQuery(selectConsent(userId, clientId, resource))).rows
    return row ? (parseScope(row.scope) ?? []) : null
  }

  function prepare(input: GrantInput): { grant: Grant; write: CompiledQuery } {
    const id = randomUUID()
    const now = deps.clock.now().getTime()
    const write = insertGrant({
      id,
      user_id: input.userId,
      client_id: input.clientId,
      resource: input.resource,
      scope: formatScope(input.scopes),
      created_at: now,
      revoked_at: null,
      revoked_reason: null,
      authorization_details: JSON.stringify(input.authorizationDetails ?? []),
      redirect_uri: input.redirectUri ?? null,
      consent_text: input.agreedText ? JSON.stringify(input.agreedText) : null,
    })
    const {
      authorizationDetails: _details,
      redirectUri: _redirectUri,
      agreedText: _agreedText,
      ...rest
    } = input
    const grant: Grant = {
      id,
      ...rest,
      scopes: [...new Set(input.scopes)].sort(),
      createdAt: new Date(now).toISOString(),
      revokedAt: null,
    }
    return { grant, write }
  }

  return {
    /** The scopes the person already agreed to for this client and resource. */
    async consentedScopes(userId: string, clientId: string, resource: string): Promise<string[]> {
      return (await rememberedScopes(userId, clientId, resource)) ?? []
    },

    /**
     * The remembered consent's scopes, or null when there is none: a remembered consent with no
     * scopes still counts (basic access was agreed to), unlike never having been asked.
     */
    rememberedScopes,

    /** Remembers consent to `scopes`, adding to what was agreed before (the union). */
    async rememberConsent(
      userId: string,
      clientId: string,
      resource: string,
      scopes: string[],
    ): Promise<string[]> {
      const now = deps.clock.now().getTime()
      const where = { user_id: userId, client_id: clientId, resource }
      return db.transaction().execute(async (trx) => {
        // Insert first: a new consent is the scopes asked for; an existing one is then read under
        // a row lock (and on SQLite after the insert took the write lock), so two consents at once
        // each add to what the other wrote instead of one losing its scopes or hitting the key.
        const inserted = await trx
          .insertInto('consents')
          .values({ ...where, scope: formatScope(scopes), created_at: now, updated_at: now })
          .onConflict((oc) => oc.columns(['user_id', 'client_id', 'resource']).doNothing())
          .executeTakeFirst()
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1)
          return [...new Set(scopes)].sort()
        let query = trx
          .selectFrom('consents')
          .select('scope')
          .where('user_id', '=', userId)
          .where('client_id', '=', clientId)
          .where('resource', '=', resource)
        if (deps.store.dialect === 'postgres') query = query.forUpdate()
        const existing = await query.executeTakeFirstOrThrow()
        const union = formatScope([...(parseScope(existing.scope) ?? []), ...scopes])
        await trx
          .updateTable('consents')
          .set({ scope: union, updated_at: now })
          .where('user_id', '=', userId)
          .where('client_id', '=', clientId)
          .where('resource', '=', resource)
          .execute()
        return union ? union.split(' ') : []
      })
    },

    /**
     * Remembers consent to `scopes` (the union with what was agreed before) in one commit with
     * its audit record (`event`, given the scopes agreed to in the end): AuditLog.appendWith, so
     * on a SQLite file the event loop waits for no fsync. The row is written on the condition
     * that it is still as read (absent, or holding the scopes read); a consent that raced another
     * for the same person, client and resource reads again and adds to what that one wrote, so
     * each round at least one of them commits and none loses scopes.
     */
    async rememberConsentWith(
      userId: string,
      clientId: string,
      resource: string,
      scopes: string[],
      event: (agreed: string[]) => AuditEventInput,
    ): Promise<string[]> {
      for (let attempt = 0; attempt < MAX_CONSENT_ATTEMPTS; attempt++) {
        const now = deps.clock.now().getTime()
        const [row] = (await db.executeQuery(selectConsent(userId, clientId, resource))).rows
        const union = formatScope([...(row ? (parseScope(row.scope) ?? []) : []), ...scopes])
        const condition = row
          ? db
              .updateTable('consents')
              .set({ scope: union, updated_at: now })
              .where('user_id', '=', userId)
              .where('client_id', '=', clientId)
              .where('resource', '=', resource)
              .where('scope', '=', row.scope)
              .compile()
          : db
              .insertInto('consents')
              .values({
                user_id: userId,
                client_id: clientId,
                resource,
                scope: union,
                created_at: now,
                updated_at: now,
              })
              .onConflict((oc) => oc.columns(['user_id', 'client_id', 'resource']).doNothing())
              .compile()
        const agreed = union ? union.split(' ') : []
        if (await deps.audit.appendWith(event(agreed), { condition, writes: [] })) return agreed
      }
      throw new DeputyError('ERR_CONFLICT', 'the consent kept changing while it was being recorded')
    },

    /**
     * Starts a grant for an approved authorization; `executor` runs it inside a caller's
     * transaction (the code issued with it commits together).
     */
    async create(input: GrantInput, executor: Kysely<Database> = db): Promise<Grant> {
      const { grant, write } = prepare(input)
      await executor.executeQuery(write)
      return grant
    },

    /** A grant and the statement that stores it, for a caller that commits it with other rows. */
    prepare,

    /** True when the person has a grant in force with this client (they allowed it before). */
    async hasActiveGrantWith(userId: string, clientId: string): Promise<boolean> {
      const row = await db
        .selectFrom('grants')
        .select('id')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .where('revoked_at', 'is', null)
        .limit(1)
        .executeTakeFirst()
      return row !== undefined
    },

    /** The authorization details a grant carries (RFC 9396), `[]` when none. */
    async detailsOf(grantId: string): Promise<Record<string, unknown>[]> {
      const [row] = (await db.executeQuery(selectDetails(grantId))).rows
      return row ? (JSON.parse(row.authorization_details) as Record<string, unknown>[]) : []
    },

    /** True while a grant is in force. */
    async isActive(grantId: string): Promise<boolean> {
      const [row] = (await db.executeQuery(selectRevokedAt(grantId))).rows
      return !!row && row.revoked_at === null
    },

    /**
     * Ends a grant and every refresh token it produced; its access tokens introspect as inactive.
     * Returns false when it was already ended (or never existed).
     */
    async revoke(grantId: string, reason: string, actor: Actor): Promise<boolean> {
      const now = deps.clock.now().getTime()
      const changed = await db.transaction().execute(async (trx) => {
        // Same lock order as refresh rotation: the grant row first, then its tokens, or the two
        // (and two revocations racing a token being issued) deadlock on PostgreSQL.
        const result = await trx
          .updateTable('grants')
          .set({ revoked_at: now, revoked_reason: reason })
          .where('id', '=', grantId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        await trx.deleteFrom('refresh_tokens').where('grant_id', '=', grantId).execute()
        return Number(result.numUpdatedRows) > 0
      })
      if (changed) {
        await deps.audit.append({
          type: 'grant.revoked',
          actor,
          target: { type: 'grant', id: grantId },
          reason,
        })
      }
      return changed
    },

    /** The person's grants in force, newest first, with the client's name. */
    async listForUser(userId: string): Promise<GrantSummary[]> {
      const rows = await db
        .selectFrom('grants')
        .innerJoin('clients', 'clients.client_id', 'grants.client_id')
        .select([
          'grants.id',
          'grants.user_id',
          'grants.client_id',
          'grants.resource',
          'grants.scope',
          'grants.created_at',
          'grants.revoked_at',
          'grants.first_used_at',
          'grants.last_used_at',
          'grants.consent_text',
          'clients.name as client_name',
        ])
        .where('grants.user_id', '=', userId)
        .where('grants.revoked_at', 'is', null)
        .orderBy('grants.created_at', 'desc')
        .execute()
      return rows.map((r) => ({
        id: r.id,
        userId: r.user_id,
        clientId: r.client_id,
        clientName: r.client_name,
        resource: r.resource,
        scopes: parseScope(r.scope) ?? [],
        createdAt: new Date(Number(r.created_at)).toISOString(),
        revokedAt: null,
        firstUsedAt: isoOrNull(r.first_used_at),
        lastUsedAt: isoOrNull(r.last_used_at),
        agreedText: r.consent_text ? (JSON.parse(r.consent_text) as AgreedScope[]) : null,
      }))
    },

    /** Notes that tokens were issued under a grant (at most one write a minute, grant-use.ts). */
    recordUse: use.record,
    /** The statement `recordUse` would run now (or undefined), to commit with other rows. */
    useStatement: use.statement,

    /** Revokes every grant a person gave one client, and forgets the consent (a fresh start). */
    async revokeClientForUser(userId: string, clientId: string, actor: Actor): Promise<number> {
      const grants = await db
        .selectFrom('grants')
        .select('id')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .where('revoked_at', 'is', null)
        .execute()
      if (grants.length === 0) {
        const known = await db
          .selectFrom('clients')
          .select('client_id')
          .where('client_id', '=', clientId)
          .executeTakeFirst()
        if (!known) throw new DeputyError('ERR_NOT_FOUND', `no client ${clientId}`)
      }
      for (const g of grants) await this.revoke(g.id, 'revoked-by-user', actor)
      await db
        .deleteFrom('consents')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .execute()
      return grants.length
    },
  }
}

export type Grants = ReturnType<typeof createGrants>
