// Shared pieces of the policy benchmark: a seeded random source, timing, percentiles, tables, and
// a Deputy opened from the built server on a SQLite file in a temporary folder.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
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

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** p50, p99 and mean of a list of milliseconds. */
export function summarize(ms) {
  const sorted = [...ms].sort((a, b) => a - b)
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
  }
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
export const fmt = (x, digits = 0) =>
  x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits)
export const range = (xs, digits = 0) =>
  xs.length === 0
    ? 'n/a'
    : `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`

export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  return rows
    .map((r, ri) => {
      const line = r.map((cell, i) =>
        i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]),
      )
      return ri === 0
        ? `${line.join('  ')}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`
        : line.join('  ')
    })
    .join('\n')
}

/** `node v20…, 2 CPUs (model)` for the first line of the output. */
export function machine() {
  let nproc
  let cpuModel
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
    nproc = cpuinfo.match(/^processor/gm)?.length
    cpuModel = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]
  } catch {}
  return { node: process.version, nproc, cpuModel }
}

/** PASS / MISS / n/a. */
export const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS')
