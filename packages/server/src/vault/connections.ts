import { randomUUID } from 'node:crypto'
import { type Kysely, type Selectable, sql } from 'kysely'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import type { Store } from '../store/db.js'
import { immediateTransaction } from '../store/exclusive.js'
import type { ConnectionsTable, Database } from '../store/schema.js'
import type { Connection, ConnectionInput } from './types.js'

export type ConnectionRow = Selectable<ConnectionsTable>

/** Which of a connection's two sealed tokens. */
type TokenKind = 'access_token' | 'refresh_token'

/**
 * The associated data a connection's token is sealed with: connection, person and provider, so
 * a sealed token copied onto another row (another person's, another provider's) fails to open.
 */
export function tokenAssociatedData(
  row: Pick<ConnectionRow, 'id' | 'user_id' | 'provider'>,
  kind: TokenKind,
): string {
  return `connections:${row.id}:${row.user_id}:${row.provider}:${kind}`
}

/** A row as the person and operators see it: never a token. */
export function toConnection(row: ConnectionRow): Connection {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString())
  return {
    id: row.id,
    userId: row.user_id,
    provider: row.provider,
    status: row.status,
    accountLabel: row.account_label,
    scopes: JSON.parse(row.scopes) as string[],
    accessTokenExpiresAt: iso(row.access_token_expires_at),
    lastUsedAt: iso(row.last_used_at),
    createdAt: iso(row.created_at) as string,
    updatedAt: iso(row.updated_at) as string,
  }
}

export interface ConnectionStoreDeps {
  store: Store
  clock: Clock
  sealer: Sealer
}

/** last_used_at is written at most this often per connection, not on every token handed out. */
const LAST_USED_RESOLUTION_MS = 60_000

/**
 * Connected accounts in SQL: one row per person and provider, the access and refresh tokens
 * sealed (keys/envelope.ts) with associated data binding them to the row. The refresh discipline
 * on top of these rows is vault/refresh.ts.
 */
export function createConnectionStore(deps: ConnectionStoreDeps) {
  const { store, clock, sealer } = deps
  const db = store.db

  const seal = (
    row: Pick<ConnectionRow, 'id' | 'user_id' | 'provider'>,
    kind: TokenKind,
    v: string,
  ) => sealer.seal(v, tokenAssociatedData(row, kind))

  async function find(userId: string, provider: string, executor: Kysely<Database> = db) {
    return executor
      .selectFrom('connections')
      .selectAll()
      .where('user_id', '=', userId)
      .where('provider', '=', provider)
      .executeTakeFirst()
  }

  async function byId(id: string, executor: Kysely<Database> = db, forUpdate = false) {
    let query = executor.selectFrom('connections').selectAll().where('id', '=', id)
    if (forUpdate && store.dialect === 'postgres') query = query.forUpdate()
    return query.executeTakeFirst()
  }

  return {
    async list(userId: string): Promise<ConnectionRow[]> {
      return db
        .selectFrom('connections')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('provider')
        .execute()
    },

    /** One provider's connections, the most recently used first (never used: last). */
    async listByProvider(provider: string, limit: number): Promise<ConnectionRow[]> {
      return db
        .selectFrom('connections')
        .selectAll()
        .where('provider', '=', provider)
        .orderBy(sql`coalesce(last_used_at, 0)`, 'desc')
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit)
        .execute()
    },

    find,

    /** The row by id; PostgreSQL: locked FOR UPDATE when `forUpdate` (inside a transaction). */
    byId,

    /** Opens the row's tokens (throws if a sealed value was moved or tampered with). */
    open(row: ConnectionRow): { accessToken: string; refreshToken: string | null } {
      return {
        accessToken: sealer.open(row.access_token_sealed, tokenAssociatedData(row, 'access_token')),
        refreshToken:
          row.refresh_token_sealed === null
            ? null
            : sealer.open(row.refresh_token_sealed, tokenAssociatedData(row, 'refresh_token')),
      }
    },

    seal,

    /**
     * Stores a connection from a finished connect flow. A reconnect replaces the tokens and
     * scopes, clears needs_reconnect and the back-off, and bumps token_version (a refresher
     * holding the old version then finds its write refused). When the provider sent no refresh
     * token this time (Google sends one only at the first consent) and the upstream account is
     * the same, the one already held is kept.
     */
    async upsert(input: ConnectionInput): Promise<{ row: ConnectionRow; created: boolean }> {
      const now = clock.now().getTime()
      const scopes = JSON.stringify(
        input.tokens.scopes.length > 0 ? input.tokens.scopes : input.requestedScopes,
      )
      return immediateTransaction(
        store,
        async (trx) => {
          const existing = await find(input.userId, input.provider, trx)
          const key = existing ?? {
            id: randomUUID(),
            user_id: input.userId,
            provider: input.provider,
          }
          const keepRefresh =
            input.tokens.refreshToken === null &&
            existing !== undefined &&
            existing.account_subject === input.accountSubject
          const values = {
            status: 'active' as const,
            account_subject: input.accountSubject,
            account_label: input.accountLabel,
            scopes,
            access_token_sealed: seal(key, 'access_token', input.tokens.accessToken),
            access_token_expires_at: input.tokens.expiresAt,
            refresh_token_sealed:
              input.tokens.refreshToken !== null
                ? seal(key, 'refresh_token', input.tokens.refreshToken)
                : keepRefresh
                  ? (existing?.refresh_token_sealed ?? null)
                  : null,
            refresh_failures: 0,
            refresh_not_before: null,
            refresh_lease_until: null,
            last_error: null,
            updated_at: now,
          }
          if (existing) {
            await trx
              .updateTable('connections')
              .set({ ...values, token_version: existing.token_version + 1 })
              .where('id', '=', existing.id)
              .execute()
          } else {
            await trx
              .insertInto('connections')
              .values({
                ...values,
                id: key.id,
                user_id: input.userId,
                provider: input.provider,
                token_version: 0,
                last_used_at: null,
                created_at: now,
              })
              .execute()
          }
          const row = await byId(key.id, trx)
          if (!row) throw new Error('connection row vanished inside its transaction')
          return { row, created: existing === undefined }
        },
        `connections:${input.userId}:${input.provider}`,
      )
    },

    /** Records that a token was handed out (at most once a minute per connection). */
    async touch(row: ConnectionRow): Promise<void> {
      const now = clock.now().getTime()
      if (row.last_used_at !== null && now - Number(row.last_used_at) < LAST_USED_RESOLUTION_MS)
        return
      await db
        .updateTable('connections')
        .set({ last_used_at: now })
        .where('id', '=', row.id)
        .execute()
    },

    async delete(id: string): Promise<boolean> {
      const result = await db.deleteFrom('connections').where('id', '=', id).executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

export type ConnectionStore = ReturnType<typeof createConnectionStore>
