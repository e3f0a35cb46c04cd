import { type Kysely, sql } from 'kysely'
import { type BucketStore, type RateLimit, secondsUntilOne, shareOf } from '../lib/rate-limit.js'
import type { Database } from './schema.js'

/**
 * Rate-limit buckets in PostgreSQL (`rate_limit_buckets`, migration 0023), shared by every
 * replica on the database: one INSERT … ON CONFLICT DO UPDATE per take refills the bucket, takes
 * a share and answers what it got, atomically under the row's lock, with the database's clock so
 * replicas whose clocks differ still agree.
 */
export function postgresBuckets(db: Kysely<Database>): BucketStore {
  return {
    shared: true,
    async take(key: string, rate: RateLimit, want: number) {
      const perMs = rate.limit / (rate.perSeconds * 1000)
      const first = shareOf(rate.limit, want)
      // The bucket as it is now: what it held, refilled for the time since, capped at the limit.
      const now = sql`EXCLUDED.updated_at`
      const available = sql`LEAST(${rate.limit}::float8, b.tokens + GREATEST(0, ${now} - b.updated_at) * ${perMs}::float8)`
      const granted = sql`(CASE WHEN ${available} >= 1 THEN LEAST(${want}::int, GREATEST(1, FLOOR(${available} / 2)))::int ELSE 0 END)`
      const { rows } = await sql<{ granted: number; tokens: number }>`
        INSERT INTO rate_limit_buckets AS b (key, tokens, granted, updated_at, expires_at)
        SELECT ${key}, ${rate.limit - first}::float8, ${first}::int, n.ms, n.ms + ${rate.perSeconds * 1000}::bigint
        FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) n
        ON CONFLICT (key) DO UPDATE SET
          granted = ${granted},
          tokens = ${available} - ${granted},
          updated_at = EXCLUDED.updated_at,
          expires_at = EXCLUDED.expires_at
        RETURNING granted, tokens`.execute(db)
      const row = rows[0]
      const got = Number(row?.granted ?? 0)
      return {
        granted: got,
        retryAfterSeconds: got > 0 ? 0 : secondsUntilOne(rate, Number(row?.tokens ?? 0)),
      }
    },
    async close() {},
  }
}
