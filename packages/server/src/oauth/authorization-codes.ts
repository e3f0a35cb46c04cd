import type { Kysely } from 'kysely'
import type { Clock } from '../lib/clock.js'
import { randomToken, sha256 } from '../lib/random.js'
import type { Store } from '../store/db.js'
import type { Database } from '../store/schema.js'
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

/** Single-use authorization codes, stored as SHA-256 digests. */
export function createAuthorizationCodes(deps: { store: Store; clock: Clock }) {
  const db = deps.store.db

  return {
    /**
     * Issues a code (256 bits of randomness) for an approved authorization; `executor` runs it
     * inside a caller's transaction.
     */
    async issue(data: AuthorizationCodeData, executor: Kysely<Database> = db): Promise<string> {
      const code = randomToken(32)
      const now = deps.clock.now().getTime()
      await executor
        .insertInto('authorization_codes')
        .values({
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
        .execute()
      return code
    },

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
      const data: AuthorizationCodeData = {
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
