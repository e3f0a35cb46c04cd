import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import type { Clock } from '../lib/clock.js'
import type { Store } from '../store/db.js'
import { LOCKS, runExclusive } from '../store/exclusive.js'
import type { SigningKeyRow } from '../store/schema.js'
import type { ActiveSigningKey, Sealer, SigningKeySummary, SigningKeys } from './types.js'

export interface SigningKeysOptions {
  store: Store
  sealer: Sealer
  clock: Clock
  /** Algorithm for new keys. */
  alg: 'ES256' | 'EdDSA'
  /** Longest lifetime of anything signed; a retired key stays published at least this long. */
  maxTokenLifetimeSeconds: number
  /** How long a process trusts its cached view of the active key (a rotation elsewhere shows up within it). */
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

  /** Retire the current key(s) and insert a new active one, under the key lock. */
  async function activateNew(replaceExisting: boolean): Promise<SigningKeyRow> {
    const fresh = await createKeyRow(options.alg)
    return runExclusive(store, LOCKS.signingKeys, async (db) => {
      const existing = await db
        .selectFrom('signing_keys')
        .selectAll()
        .where('status', '=', 'active')
        .executeTakeFirst()
      if (existing && !replaceExisting) return existing
      const now = clock.now().getTime()
      await db
        .updateTable('signing_keys')
        .set({
          status: 'retired',
          retired_at: now,
          // Signed up to `cacheMs` after now by processes with a cached copy, valid for the
          // token lifetime after that, plus a minute for clock skew at resource servers.
          publish_until: now + cacheMs + options.maxTokenLifetimeSeconds * 1000 + 60_000,
        })
        .where('status', '=', 'active')
        .execute()
      await db.insertInto('signing_keys').values(fresh).execute()
      return fresh
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
      const row =
        (await store.db
          .selectFrom('signing_keys')
          .selectAll()
          .where('status', '=', 'active')
          .executeTakeFirst()) ?? (await activateNew(false))
      const key = await toActive(row)
      cached = { key, until: now + cacheMs }
      return key
    },
    async jwks() {
      const now = clock.now().getTime()
      const rows = await store.db
        .selectFrom('signing_keys')
        .select(['public_jwk', 'status', 'publish_until', 'created_at'])
        .where((eb) => eb.or([eb('status', '=', 'active'), eb('publish_until', '>', now)]))
        .orderBy('created_at', 'desc')
        .execute()
      return { keys: rows.map((r) => JSON.parse(r.public_jwk) as JWK) }
    },
    async rotate() {
      const row = await activateNew(true)
      cached = undefined
      return summarize(row, clock.now().getTime())
    },
    async list() {
      const now = clock.now().getTime()
      const rows = await store.db
        .selectFrom('signing_keys')
        .selectAll()
        .orderBy('created_at', 'desc')
        .execute()
      return rows.map((r) => summarize(r, now))
    },
  }
}
