import type { CompiledQuery, Kysely } from 'kysely'
import type { Clock } from '../lib/clock.js'
import { randomToken, sha256 } from '../lib/random.js'
import type { Store } from '../store/db.js'
import { immediateTransaction } from '../store/exclusive.js'
import type { Database } from '../store/schema.js'
import { formatScope, parseScope } from './scopes.js'

/** What a refresh token stands for: one grant's client, person, resource and scopes. */
export interface RefreshTokenData {
  grantId: string
  clientId: string
  userId: string
  resource: string
  scopes: string[]
  /**
   * RFC 9449 §5: the thumbprint of the DPoP key a public client's family is bound to; a refresh
   * must come with a proof made with it. Null for an unbound family.
   */
  dpopJkt: string | null
}

export type RotateResult =
  /** The presented token was current (or retried within the grace): here is its successor. */
  | { status: 'ok'; data: RefreshTokenData; token: string; retried: boolean }
  | { status: 'unknown' }
  | { status: 'expired' }
  /** The grant is older than the family's absolute lifetime: the person must authorize again. */
  | { status: 'family-expired' }
  /** The grant it belongs to has ended. */
  | { status: 'revoked' }
  /** Another client's token: refused, and nothing changes (the real owner keeps it). */
  | { status: 'wrong-client' }
  /** RFC 9700 §4.14.2: a rotated token came back; the caller must revoke the whole grant. */
  | { status: 'reused'; grantId: string }

export interface RefreshTokensOptions {
  store: Store
  clock: Clock
  /** How long a token lives without being used. */
  ttlSeconds: number
  /**
   * The absolute lifetime of a family (all tokens of one grant), from the grant's creation: no
   * rotation extends a family past it (RFC 9700 §4.14.2 "refresh token expiration").
   */
  familyMaxLifetimeSeconds: number
  /** How long after its rotation a token may still be retried (a lost response). */
  graceSeconds: number
}

/**
 * Opaque refresh tokens (256 bits), stored as SHA-256 digests, rotated on every use
 * (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1). Rotation is one transaction holding the presented token's
 * row (SQLite: the writer lock; PostgreSQL: `SELECT … FOR UPDATE`), so concurrent uses of one
 * token run one after the other, in this process or across replicas.
 *
 * Grace for a lost response, for confidential clients only: when a rotated token comes back
 * within `graceSeconds` from the client it was issued to and its successor has not been used yet,
 * a fresh successor is issued and the previous successor is superseded — kept, and marked so that
 * presenting it later is reuse and ends the grant. So of any number of uses of one token only the
 * successor issued last keeps working, and whoever held a superseded one is found out, never
 * silently locked out while someone else carries on. A public client gets no grace: anyone can
 * send its client_id, so a just-used token presented again is treated as stolen. Once the
 * successor was used, or after the grace, reuse means theft and ends the grant.
 */
export function createRefreshTokens(options: RefreshTokensOptions) {
  const { store, clock } = options
  const db = store.db
  const ttlMs = options.ttlSeconds * 1000
  const graceMs = options.graceSeconds * 1000
  const familyMs = options.familyMaxLifetimeSeconds * 1000

  /** A token expires after its own idle lifetime or at its family's end, whichever is first. */
  function row(hash: string, data: RefreshTokenData, now: number, familyStart: number) {
    return {
      token_hash: hash,
      grant_id: data.grantId,
      client_id: data.clientId,
      user_id: data.userId,
      resource: data.resource,
      scope: formatScope(data.scopes),
      created_at: now,
      expires_at: Math.min(now + ttlMs, familyStart + familyMs),
      rotated_at: null,
      replaced_by: null,
      dpop_jkt: data.dpopJkt,
    }
  }

  /**
   * A transaction that serialises with every other rotation of the same token: SQLite takes the
   * writer lock up front so the read-then-write cannot fail to upgrade (or interleave with another
   * process on the same file); PostgreSQL relies on the row locks the rotation takes.
   */
  const locked = <T>(work: (trx: Kysely<Database>) => Promise<T>): Promise<T> =>
    immediateTransaction(store, work)

  /**
   * The first refresh token of a grant and the statement that stores it, for a caller that
   * commits it with other rows (the token endpoint's one commit with its audit record). The
   * grant's start, which bounds the family's lifetime, is read through `executor`.
   */
  async function prepare(
    data: RefreshTokenData,
    executor: Kysely<Database> = db,
  ): Promise<{ token: string; write: CompiledQuery }> {
    const token = randomToken(32)
    const grant = await executor
      .selectFrom('grants')
      .select('created_at')
      .where('id', '=', data.grantId)
      .executeTakeFirst()
    const now = clock.now().getTime()
    const write = db
      .insertInto('refresh_tokens')
      .values(row(sha256(token), data, now, grant?.created_at ?? now))
      .compile()
    return { token, write }
  }

  return {
    /** Issues the first refresh token of a grant; `executor` runs it inside a caller's transaction. */
    async issue(data: RefreshTokenData, executor: Kysely<Database> = db): Promise<string> {
      const { token, write } = await prepare(data, executor)
      await executor.executeQuery(write)
      return token
    },

    prepare,

    /**
     * Exchanges a refresh token for its successor. The successor keeps the presented token's
     * scope and resource (RFC 6749 §6: a new refresh token has the same scope). `check` runs
     * before anything is written; when it throws, the presented token stays as it was.
     */
    async rotate(
      token: string,
      clientId: string,
      check: (data: RefreshTokenData) => void,
      /** Whether a lost response may be retried: only for clients that authenticated. */
      options: { grace: boolean },
    ): Promise<RotateResult> {
      const hash = sha256(token)
      const now = clock.now().getTime()
      const next = randomToken(32)
      const nextHash = sha256(next)
      return locked(async (trx) => {
        // Lock order, the same everywhere a grant's tokens change: the grant row first, then its
        // tokens (grants.ts revoke, clients.ts endGrants). Holding the grant under a share lock
        // orders this rotation with a revocation: either the revocation waits and then deletes the
        // successor, or this rotation sees the grant ended. (SQLite: BEGIN IMMEDIATE serialises.)
        const owner = await trx
          .selectFrom('refresh_tokens')
          .select('grant_id')
          .where('token_hash', '=', hash)
          .executeTakeFirst()
        if (!owner) return { status: 'unknown' }
        let grantQuery = trx
          .selectFrom('grants')
          .select(['revoked_at', 'created_at'])
          .where('id', '=', owner.grant_id)
        if (store.dialect === 'postgres') grantQuery = grantQuery.forShare()
        const grant = await grantQuery.executeTakeFirst()
        let query = trx.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hash)
        if (store.dialect === 'postgres') query = query.forUpdate()
        const current = await query.executeTakeFirst()
        if (!current) return { status: 'unknown' }
        if (current.client_id !== clientId) return { status: 'wrong-client' }
        if (!grant || grant.revoked_at !== null) return { status: 'revoked' }
        // Checked before reuse detection too: past its end a family is over, whoever holds what.
        if (grant.created_at + familyMs <= now) return { status: 'family-expired' }
        const data: RefreshTokenData = {
          grantId: current.grant_id,
          clientId: current.client_id,
          userId: current.user_id,
          resource: current.resource,
          scopes: parseScope(current.scope) ?? [],
          dpopJkt: current.dpop_jkt,
        }
        if (current.rotated_at === null) {
          if (current.expires_at <= now) return { status: 'expired' }
          check(data)
          await trx
            .updateTable('refresh_tokens')
            .set({ rotated_at: now, replaced_by: nextHash })
            .where('token_hash', '=', hash)
            .execute()
          await trx
            .insertInto('refresh_tokens')
            .values(row(nextHash, data, now, grant.created_at))
            .execute()
          return { status: 'ok', data, token: next, retried: false }
        }
        // A superseded token (replaced_by null) is reuse whenever it comes back.
        if (!options.grace || now - current.rotated_at > graceMs || current.replaced_by === null) {
          return { status: 'reused', grantId: current.grant_id }
        }
        check(data)
        // Within the grace: supersede the successor, but only if nobody has used it yet; a used
        // successor means the family moved on and this is a replay. The superseded row stays, so
        // its later use reads as reuse and ends the family (RFC 9700 §4.14.2), not as unknown.
        const superseded = await trx
          .updateTable('refresh_tokens')
          .set({ rotated_at: now, replaced_by: null })
          .where('token_hash', '=', current.replaced_by)
          .where('rotated_at', 'is', null)
          .executeTakeFirst()
        if (Number(superseded.numUpdatedRows) !== 1) {
          return { status: 'reused', grantId: current.grant_id }
        }
        await trx
          .updateTable('refresh_tokens')
          .set({ replaced_by: nextHash })
          .where('token_hash', '=', hash)
          .execute()
        await trx
          .insertInto('refresh_tokens')
          .values(row(nextHash, data, now, grant.created_at))
          .execute()
        return { status: 'ok', data, token: next, retried: true }
      })
    },

    /** The live (not rotated, not expired) token with this value, for revocation and introspection. */
    async find(
      token: string,
    ): Promise<
      (RefreshTokenData & { createdAt: number; expiresAt: number; rotated: boolean }) | undefined
    > {
      const found = await db
        .selectFrom('refresh_tokens')
        .selectAll()
        .where('token_hash', '=', sha256(token))
        .executeTakeFirst()
      if (!found) return undefined
      return {
        grantId: found.grant_id,
        clientId: found.client_id,
        userId: found.user_id,
        resource: found.resource,
        scopes: parseScope(found.scope) ?? [],
        dpopJkt: found.dpop_jkt,
        createdAt: found.created_at,
        expiresAt: found.expires_at,
        rotated: found.rotated_at !== null,
      }
    },
  }
}

export type RefreshTokens = ReturnType<typeof createRefreshTokens>
