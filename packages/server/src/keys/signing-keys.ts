import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import type { Store } from '../store/db.js'
import { LOCKS, runExclusive } from '../store/exclusive.js'
import type { SigningKeyRow } from '../store/schema.js'
import type {
  ActiveSigningKey,
  Sealer,
  SigningKeyRotation,
  SigningKeySummary,
  SigningKeys,
} from './types.js'

/** Who the audit log names when Deputy creates or rotates a key on its own. */
const DEPUTY: Actor = { type: 'system', id: 'deputy' }

export interface SigningKeysOptions {
  store: Store
  sealer: Sealer
  clock: Clock
  /** Records `signing-key.created` and `signing-key.rotated` (kid and alg only). */
  audit: AuditLog
  /** Algorithm for new keys. */
  alg: 'ES256' | 'EdDSA'
  /** Longest lifetime of anything signed; a retired key stays published at least this long. */
  maxTokenLifetimeSeconds: number
  /**
   * How long a process keeps its cached view of the active key at most; a rotation anywhere drops
   * it at once (store/invalidations.ts). Retired keys stay published this much longer.
   */
  cacheSeconds?: number
}

/**
 * Signing keys, stored with the private half sealed by the master key. A rotation makes a new key
 * active and keeps the old one published until every token it may have signed has expired: the
 * token lifetime plus the time other processes may still sign with their cached copy.
 */
export function createSigningKeys(options: SigningKeysOptions): SigningKeys {
  const { store, sealer, clock } = options
  const cacheMs = (options.cacheSeconds ?? 30) * 1000
  let cached: { key: ActiveSigningKey; until: number } | undefined
  /** Bumped when the cached key is dropped, so a read that raced a rotation does not keep it. */
  let drops = 0
  // A rotation by any process makes its new key the one signing here at once (invalidations.ts).
  store.invalidations.subscribe('signing_keys', () => {
    drops++
    cached = undefined
  })

  const aad = (kid: string) => `signing_keys:${kid}`

  async function createKeyRow(alg: 'ES256' | 'EdDSA'): Promise<SigningKeyRow> {
    const { publicKey, privateKey } = await generateKeyPair(alg, {
      extractable: true,
      crv: alg === 'EdDSA' ? 'Ed25519' : undefined,
    })
    const publicJwk = await exportJWK(publicKey)
    const kid = await calculateJwkThumbprint(publicJwk)
    const privateJwk = await exportJWK(privateKey)
    return {
      kid,
      alg,
      public_jwk: JSON.stringify({ ...publicJwk, kid, alg, use: 'sig' }),
      private_jwk_sealed: sealer.seal(JSON.stringify(privateJwk), aad(kid)),
      status: 'active',
      created_at: clock.now().getTime(),
      retired_at: null,
      publish_until: null,
    }
  }

  async function toActive(row: SigningKeyRow): Promise<ActiveSigningKey> {
    const jwk = JSON.parse(sealer.open(row.private_jwk_sealed, aad(row.kid))) as JWK
    const privateKey = (await importJWK(jwk, row.alg)) as CryptoKey
    return { kid: row.kid, alg: row.alg as ActiveSigningKey['alg'], privateKey }
  }

  /**
   * Inserts a new active key and retires the current one, under the key lock so that two
   * processes starting on an empty database end with one active key. With `replaceExisting`
   * false an existing active key wins and nothing changes.
   */
  async function activateNew(
    replaceExisting: boolean,
  ): Promise<{ active: SigningKeyRow; created: boolean; retired: SigningKeyRow | null }> {
    const fresh = await createKeyRow(options.alg)
    return runExclusive(store, LOCKS.signingKeys, async (db) => {
      const existing = await db
        .selectFrom('signing_keys')
        .selectAll()
        .where('status', '=', 'active')
        .orderBy('created_at', 'desc')
        .execute()
      const current = existing[0]
      if (current && !replaceExisting) return { active: current, created: false, retired: null }
      const now = clock.now().getTime()
      fresh.created_at = now
      // Signed up to `cacheMs` after now by processes with a cached copy, valid for the
      // token lifetime after that, plus a minute for clock skew at resource servers.
      const publishUntil = now + cacheMs + options.maxTokenLifetimeSeconds * 1000 + 60_000
      await db
        .updateTable('signing_keys')
        .set({ status: 'retired', retired_at: now, publish_until: publishUntil })
        .where('status', '=', 'active')
        .execute()
      await db.insertInto('signing_keys').values(fresh).execute()
      await store.invalidations.mark(db, 'signing_keys')
      const retired: SigningKeyRow | null = current
        ? { ...current, status: 'retired', retired_at: now, publish_until: publishUntil }
        : null
      return { active: fresh, created: true, retired }
    })
  }

  function summarize(row: SigningKeyRow, now: number): SigningKeySummary {
    return {
      kid: row.kid,
      alg: row.alg,
      status: row.status,
      createdAt: new Date(row.created_at).toISOString(),
      retiredAt: row.retired_at === null ? null : new Date(row.retired_at).toISOString(),
      publishUntil: row.publish_until === null ? null : new Date(row.publish_until).toISOString(),
      published: row.status === 'active' || (row.publish_until ?? 0) > now,
    }
  }

  return {
    async active() {
      const now = clock.now().getTime()
      if (cached && cached.until > now) return cached.key
      const stamp = drops
      let row = await store.db
        .selectFrom('signing_keys')
        .selectAll()
        .where('status', '=', 'active')
        .orderBy('created_at', 'desc')
        .executeTakeFirst()
      if (!row) {
        const result = await activateNew(false)
        row = result.active
        if (result.created) {
          await options.audit.append({
            type: 'signing-key.created',
            actor: DEPUTY,
            target: { type: 'signing_key', id: row.kid },
            data: { kid: row.kid, alg: row.alg },
          })
        }
      }
      const key = await toActive(row)
      if (stamp === drops) cached = { key, until: now + cacheMs }
      return key
    },
    async jwks() {
      const now = clock.now().getTime()
      const rows = await store.db
        .selectFrom('signing_keys')
        .select(['public_jwk', 'status', 'publish_until', 'created_at'])
        .where((eb) => eb.or([eb('status', '=', 'active'), eb('publish_until', '>', now)]))
        // Active first: some verifiers try the keys in order.
        .orderBy('status', 'asc')
        .orderBy('created_at', 'desc')
        .orderBy('kid', 'asc')
        .execute()
      return { keys: rows.map((r) => JSON.parse(r.public_jwk) as JWK) }
    },
    async rotate(actor = DEPUTY): Promise<SigningKeyRotation> {
      const { active, retired } = await activateNew(true)
      await store.invalidations.announce('signing_keys', active.kid)
      await options.audit.append({
        type: 'signing-key.rotated',
        actor,
        target: { type: 'signing_key', id: active.kid },
        data: { kid: active.kid, alg: active.alg, retiredKid: retired?.kid ?? null },
      })
      const now = clock.now().getTime()
      return { active: summarize(active, now), retired: retired ? summarize(retired, now) : null }
    },
    async list() {
      const now = clock.now().getTime()
      const rows = await store.db
        .selectFrom('signing_keys')
        .selectAll()
        .orderBy('status', 'asc')
        .orderBy('created_at', 'desc')
        .orderBy('kid', 'asc')
        .execute()
      return rows.map((r) => summarize(r, now))
    },
  }
}
