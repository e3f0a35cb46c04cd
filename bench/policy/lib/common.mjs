// Shared pieces of the policy benchmark: a seeded random source, timing, and a Deputy opened from
// the built server on a SQLite file in a temporary folder. Percentiles, tables and the rest of
// the runner's skeleton are bench/lib/runner.mjs.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const DIST = fileURLToPath(new URL('../../../packages/server/dist/index.js', import.meta.url))

/** The built server's exports; a clear line when it is not built. */
export async function loadDeputy() {
  if (!existsSync(DIST)) throw new Error(`Deputy is not built (${DIST} missing): run npm run build`)
  return import(DIST)
}

/**
 * Deputy's modules (no HTTP) on a fresh SQLite file, as shipped: production mode, the audit chain
 * on. `close()` also removes the folder.
 */
export async function openBenchDeputy(name) {
  const { loadConfig, openDeputy } = await loadDeputy()
  const dir = mkdtempSync(join(tmpdir(), `deputy-bench-${name}-`))
  const config = loadConfig({
    env: {},
    overrides: {
      mode: 'production',
      issuer: 'http://127.0.0.1:9',
      dataDir: dir,
      database: join(dir, 'deputy.db'),
      masterKey: randomBytes(32).toString('base64url'),
      logLevel: process.env.BENCH_DEPUTY_LOG_LEVEL ?? 'warn',
    },
  })
  const deputy = await openDeputy(config)
  return {
    ...deputy,
    dir,
    async close() {
      await deputy.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** mulberry32: the same data on every run, so runs compare. */
export function seededRandom(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  }
}

/** Milliseconds an async call takes (hrtime). */
export async function timed(fn) {
  const start = process.hrtime.bigint()
  const result = await fn()
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, result }
}
