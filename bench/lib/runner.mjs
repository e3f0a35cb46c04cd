// What every benchmark runner shares: settings from the environment, peers started side by side in
// their own processes, interleaved rounds with the order rotating, CPU per operation from /proc
// beside the throughput, ratios taken within a round, tables, verdicts, and a run that is "not
// clean" (exit 1) when anything failed. How to run each benchmark and read it: bench/README.md.
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'

/** BENCH_ROUNDS and BENCH_LONG, read once; each runner adds its own settings. */
export function baseSettings(env = process.env) {
  const long = env.BENCH_LONG === '1'
  return { long, rounds: Number(env.BENCH_ROUNDS ?? 3) }
}

/** BENCH_WARMUP / BENCH_DURATION in seconds: 2 / 5 by default, 5 / 15 with BENCH_LONG=1. */
export function timedSettings(env = process.env) {
  const { long, rounds } = baseSettings(env)
  return {
    rounds,
    warmup: Number(env.BENCH_WARMUP ?? (long ? 5 : 2)),
    duration: Number(env.BENCH_DURATION ?? (long ? 15 : 5)),
  }
}

/** A comma-separated list setting. */
export const listSetting = (value, fallback) => (value ?? fallback).split(',')

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

/** The machine line every benchmark's output starts with. */
export function machineLine() {
  const { node, nproc, cpuModel } = machine()
  return `node ${node}, ${nproc ?? '?'} CPUs (${cpuModel ?? 'unknown'})`
}

// --- numbers and tables -------------------------------------------------------------------------

/** The value at percentile `p` (0–100) of a sorted list. */
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
/** `median (min–max)`. */
export const range = (xs, digits = 0) =>
  xs.length === 0
    ? 'n/a'
    : `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`
export const signed = (x, digits) =>
  x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${fmt(x, digits)}`
/** PASS / MISS / n/a. */
export const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS')

/** A text table: the first row is the header, the first column left-aligned. */
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

/** `items` in the order of round `round`: rotated, so no peer always runs first or after another. */
export const rotated = (items, round) => items.map((_, i) => items[(i + round) % items.length])

/**
 * `f(a, b)` for every round in which both peers have a result (results are indexed by round), so
 * a ratio compares runs of the same minutes on the same machine.
 */
export function sameRound(a = [], b = [], f) {
  return a.flatMap((r, i) => (r && b[i] ? [f(r, b[i])] : []))
}

// --- processes ----------------------------------------------------------------------------------

/** Total CPU time (all threads) of a process in µs, from /proc; undefined elsewhere. */
export function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (USER_HZ = 100).
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}

/** The CPU time of several processes together (`micros` of each); undefined if one cannot be read. */
export function cpuOf(pids, micros = cpuMicros) {
  const each = pids.map(micros)
  return each.some((x) => x === undefined) ? undefined : each.reduce((a, b) => a + b, 0)
}

/**
 * The CPU time of a process's main thread alone (its event loop, for Node) in µs: the task whose
 * id is the pid. The rest of `cpuMicros` is worker threads, the libuv pool and V8's GC helpers.
 */
export function mainThreadMicros(pid) {
  return cpuMicros(`${pid}/task/${pid}`)
}

/**
 * The child processes of one run: every one is stopped when the runner exits, and problems are
 * collected for the closing NOT CLEAN list.
 */
export function createRun() {
  const children = new Set()
  const problems = []
  const stopAll = () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
  }
  process.on('exit', stopAll)
  process.on('SIGINT', () => process.exit(130))

  /**
   * Starts a peer's server process and waits for its `ready` message ({ info }), or `unavailable`,
   * or an error. Resolves with `{ name, ...info, pids, child }` or `{ name, error }`.
   */
  function startServer(name, script, { env = {}, verbose = false } = {}) {
    return new Promise((resolve) => {
      const child = fork(script, [], {
        env: { ...process.env, ...env, NODE_ENV: 'production' },
        // BENCH_PROFILE=<dir>: a V8 CPU profile of each server's main thread, written at exit.
        execArgv: process.env.BENCH_PROFILE
          ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
          : [],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      })
      children.add(child)
      let stderr = ''
      child.stderr.on('data', (d) => {
        stderr += d
        if (verbose) process.stderr.write(`[${name}] ${d}`)
      })
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        resolve({ name, error: 'did not start within 60 s' })
      }, 60_000)
      child.on('message', (m) => {
        clearTimeout(timer)
        if (m.type === 'ready')
          resolve({ name, ...m.info, pids: [child.pid, ...(m.info.pids ?? [])], child })
        else if (m.type === 'unavailable') resolve({ name, unavailable: m.message })
        else resolve({ name, error: m.message })
      })
      child.on('exit', (code) => {
        clearTimeout(timer)
        resolve({
          name,
          error: `exited with code ${code} before it was ready: ${stderr.trim().split('\n').at(-1) ?? ''}`,
        })
      })
    })
  }

  /**
   * Runs one load process (`script`, sent `job` over IPC) against processes `cpuPids`; its
   * measurement, with the CPU the measured processes used per request during the measured window
   * (from its `measuring` message to its `result`). `sample`, if given, is called at both ends
   * of the window too, and the result carries its two values as `sampled: [start, end]`.
   */
  function measure(script, job, cpuPids, { sample } = {}) {
    return new Promise((resolve, reject) => {
      const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      children.add(child)
      let cpuStart
      let mainStart
      let loadStart
      let sampledStart
      // Per request: all threads of the measured processes, their main threads alone, and the
      // load generator's own CPU (on a 2-core machine it shares the cores with the server).
      const perRequest = (end, start, requests) =>
        start !== undefined && end !== undefined && requests > 0
          ? (end - start) / requests
          : undefined
      child.on('message', (m) => {
        if (m.type === 'measuring') {
          cpuStart = cpuOf(cpuPids)
          mainStart = cpuOf(cpuPids, mainThreadMicros)
          loadStart = cpuMicros(child.pid)
          sampledStart = sample?.()
        } else if (m.type === 'result') {
          const cpuEnd = cpuOf(cpuPids)
          const mainEnd = cpuOf(cpuPids, mainThreadMicros)
          const loadEnd = cpuMicros(child.pid)
          const sampled = sample ? [sampledStart, sample()] : undefined
          resolve({
            ...m,
            cpuPerRequest: perRequest(cpuEnd, cpuStart, m.requests),
            mainCpuPerRequest: perRequest(mainEnd, mainStart, m.requests),
            loadCpuPerRequest: perRequest(loadEnd, loadStart, m.requests),
            ...(sampled && { sampled }),
          })
        } else if (m.type === 'error') reject(new Error(m.message))
      })
      child.on('exit', () => children.delete(child))
      child.send(job)
    })
  }

  /**
   * Runs a scenario in interleaved rounds over peers that started (`error`, `unavailable`: left
   * out); returns results[peer][round]. A run with failed requests makes the benchmark not clean;
   * a peer whose run throws is out for the rest of the benchmark.
   */
  async function scenario(title, peers, rounds, runOne, { labelWidth = 20 } = {}) {
    const results = Object.fromEntries(peers.map((s) => [s.name, []]))
    for (let round = 0; round < rounds; round++) {
      for (const peer of rotated(peers, round)) {
        if (peer.error || peer.unavailable) continue
        try {
          const r = await runOne(peer)
          results[peer.name][round] = r
          const digits = r.p50 < 10 ? 2 : 1
          const failed = r.non2xx || r.errors || r.timeouts
          process.stdout.write(
            `  ${title} round ${round + 1}/${rounds} ${peer.label.padEnd(labelWidth)} ${fmt(r.rps)} /s  p50 ${fmt(r.p50, digits)} ms  p99 ${fmt(r.p99, digits)} ms${failed ? `  non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts}${r.firstError ? ` (${r.firstError})` : ''}` : ''}\n`,
          )
          if (failed) problems.push(`${peer.label}: failed requests in ${title}`)
        } catch (err) {
          peer.error = `${title}: ${err.message}`
          problems.push(`${peer.label}: ${peer.error}`)
          process.stdout.write(`  ${title} ${peer.label}: FAILED — ${err.message}\n`)
        }
      }
    }
    return results
  }

  /**
   * The per-peer table of a throughput scenario: rate, p50, p99 and CPU per operation, medians
   * over rounds.
   */
  function throughputTable(peers, results, { unit = 'req', digits = 1 } = {}) {
    const rows = [
      [
        'server',
        `${unit === 'flow' ? 'flows' : unit}/s median (min–max)`,
        'p50 ms',
        'p99 ms',
        `CPU µs/${unit}`,
        'main thread',
        'load gen.',
        'runs',
      ],
    ]
    for (const s of peers) {
      const rs = (results[s.name] ?? []).filter(Boolean)
      if (s.unavailable) rows.push([s.label, 'not available', '', '', '', '', '', '0'])
      else if (rs.length === 0)
        rows.push([s.label, `FAILED: ${s.error ?? 'no runs'}`, '', '', '', '', '', '0'])
      else
        rows.push([
          s.label,
          range(rs.map((r) => r.rps)),
          fmt(median(rs.map((r) => r.p50)), digits),
          fmt(median(rs.map((r) => r.p99)), digits),
          medianOf(rs, 'cpuPerRequest'),
          medianOf(rs, 'mainCpuPerRequest'),
          medianOf(rs, 'loadCpuPerRequest'),
          String(rs.length),
        ])
    }
    return table(rows)
  }

  /** The median of one per-request CPU figure over runs, or n/a when a run could not read it. */
  function medianOf(runs, field) {
    return runs.every((r) => r[field] !== undefined)
      ? fmt(median(runs.map((r) => r[field])))
      : 'n/a'
  }

  /**
   * Same-round ratios of peer pairs `[a, b, target?]`: a / b in throughput and in CPU per
   * operation, median (min–max) over rounds. A pair with a target (`{ throughput, cpu }`: at
   * least that throughput ratio, at most that CPU ratio) gets a verdict, so a run says whether it
   * met the issue's numbers on this machine in these minutes.
   */
  function ratioTable(pairs, results) {
    const rows = [['ratio (same round)', 'throughput', 'CPU per op.', 'target', 'verdict']]
    for (const [a, b, target] of pairs) {
      const throughput = sameRound(results[a.name], results[b.name], (x, y) => x.rps / y.rps)
      const cpu = sameRound(results[a.name], results[b.name], (x, y) =>
        x.cpuPerRequest !== undefined && y.cpuPerRequest !== undefined
          ? x.cpuPerRequest / y.cpuPerRequest
          : undefined,
      ).filter((x) => x !== undefined)
      const goals = []
      const verdicts = []
      if (target?.throughput !== undefined) {
        goals.push(`≥ ${target.throughput}×`)
        verdicts.push(
          `throughput ${verdict(throughput.length ? median(throughput) >= target.throughput : undefined)}`,
        )
      }
      if (target?.cpu !== undefined) {
        goals.push(`CPU ≤ ${target.cpu}×`)
        verdicts.push(`CPU ${verdict(cpu.length ? median(cpu) <= target.cpu : undefined)}`)
      }
      rows.push([
        `${a.label} / ${b.label}`,
        range(throughput, 2),
        cpu.length ? range(cpu, 2) : 'n/a',
        goals.join(', '),
        verdicts.join(', '),
      ])
    }
    return table(rows)
  }

  /** Writes BENCH_JSON if asked, stops the children, lists what was not clean and sets exit 1. */
  function finish(raw, log = console.log) {
    if (process.env.BENCH_JSON) {
      writeFileSync(process.env.BENCH_JSON, JSON.stringify(raw, null, 2))
      log(`\nraw results written to ${process.env.BENCH_JSON}`)
    }
    stopAll()
    if (problems.length > 0) {
      log(
        `\nNOT CLEAN (${problems.length}):\n${[...new Set(problems)].map((p) => `  - ${p}`).join('\n')}`,
      )
      process.exitCode = 1
    }
  }

  return {
    problems,
    children,
    startServer,
    measure,
    scenario,
    throughputTable,
    ratioTable,
    finish,
  }
}
