import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { ChangeActor, UsersDeps } from '../identity/users.js'
import { parseInput } from '../identity/users.js'
import { DeputyError } from '../lib/errors.js'
import { randomToken, sha256 } from '../lib/random.js'

/** An admin API key as listed: never the key itself, which is shown once at creation. */
export interface AdminApiKey {
  id: string
  name: string
  createdAt: string
  lastUsedAt: string | null
  revokedAt: string | null
}

/** A key just created: the only time `key` is ever available. */
export interface CreatedAdminApiKey extends AdminApiKey {
  key: string
}

/** The prefix makes a leaked key recognisable to secret scanners and to the person who finds it. */
const KEY_PREFIX = 'dpk_'

const KeyNameSchema = z.string().trim().min(1, 'must not be empty').max(100)

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

/** Admin API keys: high-entropy bearer secrets stored only as their SHA-256 digest. */
export function createAdminApiKeys(deps: UsersDeps) {
  const { store, clock, audit } = deps
  const db = store.db

  return {
    /** Creates a key and returns it with its secret, which is never stored nor shown again. */
    async create(name: string, actor: ChangeActor): Promise<CreatedAdminApiKey> {
      const parsed = parseInput(KeyNameSchema, name, 'name')
      const id = randomUUID()
      const key = `${KEY_PREFIX}${randomToken(32)}`
      const now = clock.now().getTime()
      await db
        .insertInto('admin_api_keys')
        .values({
          id,
          name: parsed,
          key_hash: sha256(key),
          created_at: now,
          last_used_at: null,
          revoked_at: null,
        })
        .execute()
      await audit.append({
        type: 'admin-key.created',
        actor,
        target: { type: 'admin-key', id },
        data: { name: parsed },
      })
      return {
        id,
        name: parsed,
        key,
        createdAt: iso(now) as string,
        lastUsedAt: null,
        revokedAt: null,
      }
    },

    /** Every key, newest first, revoked ones included so an operator sees what happened. */
    async list(): Promise<AdminApiKey[]> {
      const rows = await db
        .selectFrom('admin_api_keys')
        .select(['id', 'name', 'created_at', 'last_used_at', 'revoked_at'])
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .execute()
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        createdAt: iso(row.created_at) as string,
        lastUsedAt: iso(row.last_used_at),
        revokedAt: iso(row.revoked_at),
      }))
    },

    /** Revokes a key; it stops working at once. */
    async revoke(id: string, actor: ChangeActor): Promise<AdminApiKey> {
      const row = await db
        .selectFrom('admin_api_keys')
        .select(['id', 'name', 'created_at', 'last_used_at', 'revoked_at'])
        .where('id', '=', id)
        .executeTakeFirst()
      if (!row) throw new DeputyError('ERR_NOT_FOUND', `no admin API key with id ${id}`)
      if (row.revoked_at !== null)
        throw new DeputyError('ERR_CONFLICT', `admin API key ${id} is already revoked`)
      const now = clock.now().getTime()
      await db.updateTable('admin_api_keys').set({ revoked_at: now }).where('id', '=', id).execute()
      await audit.append({
        type: 'admin-key.revoked',
        actor,
        target: { type: 'admin-key', id },
        data: { name: row.name },
      })
      return {
        id: row.id,
        name: row.name,
        createdAt: iso(row.created_at) as string,
        lastUsedAt: iso(row.last_used_at),
        revokedAt: iso(now),
      }
    },

    /** The key a presented secret belongs to if it is valid and not revoked; records its use. */
    async verify(key: string): Promise<{ id: string; name: string } | undefined> {
      // Only the digest is compared, so the lookup leaks nothing about the key through timing.
      const row = await db
        .selectFrom('admin_api_keys')
        .select(['id', 'name'])
        .where('key_hash', '=', sha256(key))
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      if (!row) return undefined
      await db
        .updateTable('admin_api_keys')
        .set({ last_used_at: clock.now().getTime() })
        .where('id', '=', row.id)
        .execute()
      return row
    },
  }
}

export type AdminApiKeys = ReturnType<typeof createAdminApiKeys>
