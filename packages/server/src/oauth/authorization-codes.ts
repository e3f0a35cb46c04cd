import type { CompiledQuery, Insertable, Kysely } from 'kysely'
import type { Clock } from '../lib/clock.js'
import { randomToken, sha256 } from '../lib/random.js'
import type { Store } from '../store/db.js'
import { reusedStatement } from '../store/reused-statement.js'
import type { AuthorizationCodesTable, Database } from '../store/schema.js'
import { formatScope, parseScope } from './scopes.js'

/** Authorization codes live one minute (RFC 6749 §4.1.2 recommends at most ten). */
export const AUTHORIZATION_CODE_TTL_MS = 60_000

export interface AuthorizationCodeData {
  grantId: string
  clientId: string
  userId: string
  redirectUri: string
  /** PKCE S256 code_challenge (RFC 7636 §4.2). */
  codeChallenge: string
  resource: string
  scopes: string[]
  nonce: string | null
  /** When the person authenticated (epoch ms), for `auth_time` in ID tokens. */
  authTime: number
}

export type ConsumeResult =
  | { status: 'ok'; code: AuthorizationCodeData }
  /**
   * Already consumed. `redeemed`: the redemption that won has issued its tokens, so the caller must
   * revoke them (RFC 6749 §4.1.2); otherwise it is still issuing, and this request lost a race.
   */
  | { status: 'replayed'; code: AuthorizationCodeData; redeemed: boolean }
  | { status: 'expired' }
  | { status: 'unknown' }

/** A code as `find` reads it, before anything is written: live, or why not. */
export type FoundCode =
  | Exclude<ConsumeResult, { status: 'ok' }>
  | { status: 'live'; code: AuthorizationCodeData }

/** Single-use authorization codes, stored as SHA-256 digests. */
export function createAuthorizationCodes(deps: { store: Store; clock: Clock }) {
  const db = deps.store.db

  function toData(
    row: Pick<
      AuthorizationCodesTable,
      | 'grant_id'
      | 'client_id'
      | 'user_id'
      | 'redirect_uri'
      | 'code_challenge'
      | 'resource'
      | 'scope'
      | 'nonce'
      | 'auth_time'
    >,
  ): AuthorizationCodeData {
    return {
      grantId: row.grant_id,
      clientId: row.client_id,
      userId: row.user_id,
      redirectUri: row.redirect_uri,
      codeChallenge: row.code_challenge,
      resource: row.resource,
      scopes: parseScope(row.scope) ?? [],
      nonce: row.nonce,
      authTime: row.auth_time,
    }
  }

  // The statements of the flow's hot path, compiled once (store/reused-statement.ts).
  const insertCode = reusedStatement(
    (row: Insertable<Database['authorization_codes']>) =>
      db.insertInto('authorization_codes').values(row).compile(),
    (row) => Object.values(row),
  )
  const selectCode = reusedStatement(
    (hash: string) =>
      db.selectFrom('authorization_codes').selectAll().where('code_hash', '=', hash).compile(),
    (hash) => [hash],
  )
  const redeem = reusedStatement(
    (hash: string, now: number) =>
      db
        .updateTable('authorization_codes')
        .set({ consumed_at: now, redeemed_at: now })
        .where('code_hash', '=', hash)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .compile(),
    (hash, now) => [now, now, hash, now],
  )
  const spendOnly = reusedStatement(
    (hash: string, now: number) =>
      db
        .updateTable('authorization_codes')
        .set({ consumed_at: now })
        .where('code_hash', '=', hash)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .compile(),
    (hash, now) => [now, hash, now],
  )

  function prepareIssue(data: AuthorizationCodeData): { code: string; write: CompiledQuery } {
    const code = randomToken(32)
    const now = deps.clock.now().getTime()
    const write = insertCode({
      code_hash: sha256(code),
      grant_id: data.grantId,
      client_id: data.clientId,
      user_id: data.userId,
      redirect_uri: data.redirectUri,
      code_challenge: data.codeChallenge,
      resource: data.resource,
      scope: formatScope(data.scopes),
      nonce: data.nonce,
      auth_time: data.authTime,
      created_at: now,
      expires_at: now + AUTHORIZATION_CODE_TTL_MS,
      consumed_at: null,
      redeemed_at: null,
    })
    return { code, write }
  }

  return {
    /**
     * Reads a code without spending it: live (its data), already consumed (`replayed`, with
     * whether that redemption completed), expired, or unknown. A consumed code reads as replayed
     * even once expired, as `consume` answers.
     */
    async find(code: string): Promise<FoundCode> {
      const [row] = (await db.executeQuery(selectCode(sha256(code)))).rows
      if (!row) return { status: 'unknown' }
      const data = toData(row)
      if (row.consumed_at !== null)
        return { status: 'replayed', code: data, redeemed: row.redeemed_at !== null }
      if (row.expires_at <= deps.clock.now().getTime()) return { status: 'expired' }
      return { status: 'live', code: data }
    },

    /**
     * Spends a live code without redeeming it: a redemption refused after the code was presented
     * (wrong verifier, another client's code) still uses it up, so it cannot be tried again.
     */
    async spend(code: string): Promise<void> {
      await db.executeQuery(spendOnly(sha256(code), deps.clock.now().getTime()))
    },

    /**
     * The statement that redeems a live code, spent and redeemed at once: the condition of the
     * token endpoint's one commit (with the refresh token and the audit record), so of concurrent
     * redemptions exactly one changes the row, and a code is never spent without its tokens.
     */
    redemption(code: string): CompiledQuery {
      return redeem(sha256(code), deps.clock.now().getTime())
    },

    /**
     * Issues a code (256 bits of randomness) for an approved authorization; `executor` runs it
     * inside a caller's transaction.
     */
    async issue(data: AuthorizationCodeData, executor: Kysely<Database> = db): Promise<string> {
      const { code, write } = prepareIssue(data)
      await executor.executeQuery(write)
      return code
    },

    /** A code and the statement that stores it, for a caller that commits it with other rows. */
    prepareIssue,

    /**
     * Redeems a code exactly once: the conditional UPDATE lets one of any number of concurrent
     * redemptions win (in one process or across replicas); the others see it consumed.
     */
    async consume(code: string): Promise<ConsumeResult> {
      const hash = sha256(code)
      const now = deps.clock.now().getTime()
      const won = await db
        .updateTable('authorization_codes')
        .set({ consumed_at: now })
        .where('code_hash', '=', hash)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
      const row = await db
        .selectFrom('authorization_codes')
        .selectAll()
        .where('code_hash', '=', hash)
        .executeTakeFirst()
      if (!row) return { status: 'unknown' }
      const data = toData(row)
      if (Number(won.numUpdatedRows) === 1) return { status: 'ok', code: data }
      if (row.consumed_at !== null)
        return { status: 'replayed', code: data, redeemed: row.redeemed_at !== null }
      return { status: 'expired' }
    },

    /**
     * Records that the winning redemption has issued everything, in the transaction that stores its
     * refresh token: from then on a replay revokes what it issued; before, a replay only loses.
     */
    async markRedeemed(code: string, executor: Kysely<Database> = db): Promise<void> {
      await executor
        .updateTable('authorization_codes')
        .set({ redeemed_at: deps.clock.now().getTime() })
        .where('code_hash', '=', sha256(code))
        .execute()
    },
  }
}

export type AuthorizationCodes = ReturnType<typeof createAuthorizationCodes>
