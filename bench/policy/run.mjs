// Policy benchmark (issue 5 §6): (a) list-objects and the retrieval filter over 100,000
// relationship tuples on SQLite; (b) Cedar decisions with 1, 10, 100 and 1,000 policies and
// realistic entity slices. Against the built server (packages/server/dist): (a) in this process,
// (b) one process per policy count; rounds interleaved. How to run it and how to read it:
// bench/README.md.

import {
  baseSettings,
  createRun,
  fmt,
  listSetting,
  machine,
  machineLine,
  median,
  range,
  table,
  verdict,
} from '../lib/runner.mjs'
import { setupDecisions } from './decisions.mjs'
import { setupTuples } from './tuples.mjs'

const env = process.env
const { long, rounds: roundCount } = baseSettings(env)
const settings = {
  rounds: roundCount,
  samples: Number(env.BENCH_SAMPLES ?? (long ? 5000 : 1000)),
  warmup: Number(env.BENCH_WARMUP_SAMPLES ?? (long ? 500 : 100)),
  tuples: Number(env.BENCH_TUPLES ?? 100_000),
  policyCounts: (env.BENCH_POLICY_COUNTS ?? '1,10,100,1000').split(',').map(Number),
  scenarios: listSetting(env.BENCH_SCENARIOS, 'tuples,decisions'),
}
// The targets of issue 5 §6.
const TARGET = { listObjectsP50Ms: 10, decisionRatio: 1.5 }
const run = createRun()
const { problems } = run
const log = (line) => console.log(line)
const raw = { settings, ...machine() }

log(
  `Policy benchmark — ${machineLine()}, ${settings.rounds} rounds of ${settings.samples} measured calls per operation (${settings.warmup} warm-up)`,
)
const verdicts = []

if (settings.scenarios.includes('tuples')) {
  log(`\n(a) relationship tuples: ${settings.tuples.toLocaleString('en')} tuples, SQLite file`)
  const tuples = await setupTuples(settings, log, problems)
  const rounds = []
  for (let round = 0; round < settings.rounds; round++) {
    rounds.push(await tuples.round(1000 + round))
    const r = rounds[round]
    log(
      `  round ${round + 1}/${settings.rounds}: ${Object.entries(r)
        .map(([name, s]) => `${name} p50 ${fmt(s.p50, 2)} ms`)
        .join(', ')}`,
    )
  }
  await tuples.close()
  raw.tuples = rounds
  const rows = [['operation', 'p50 ms median (min–max)', 'p99 ms', 'mean ms', 'results/call']]
  for (const name of Object.keys(rounds[0])) {
    const of = (key) => rounds.map((r) => r[name][key])
    rows.push([
      name,
      range(of('p50'), 3),
      fmt(median(of('p99')), 3),
      fmt(median(of('mean')), 3),
      fmt(median(of('size')), 1),
    ])
  }
  log(`\n${table(rows)}`)
  const p50 = median(rounds.map((r) => r['list-objects'].p50))
  const ok = p50 < TARGET.listObjectsP50Ms
  verdicts.push({ target: 'list-objects p50', p50, ok })
  log(
    `${verdict(ok)}  list-objects over ${settings.tuples.toLocaleString('en')} tuples: p50 ${fmt(p50, 2)} ms (target < ${TARGET.listObjectsP50Ms} ms)`,
  )
}

if (settings.scenarios.includes('decisions')) {
  log(
    `\n(b) Cedar decisions: ${settings.policyCounts.join(', ')} policies over 200 tool actions (one process, one Deputy, one SQLite file each)`,
  )
  const decisions = await setupDecisions(settings, log, problems)
  const rounds = []
  for (let round = 0; round < settings.rounds; round++) {
    try {
      rounds.push(await decisions.round(round))
    } catch (err) {
      problems.push(`decisions: round ${round + 1}: ${err.message}`)
      log(`  round ${round + 1}/${settings.rounds}: FAILED — ${err.message}`)
      break
    }
    log(
      `  round ${round + 1}/${settings.rounds}: explain p50 ${settings.policyCounts
        .map((n) => `${n}: ${fmt(rounds[round][n].explain.p50, 3)} ms`)
        .join(', ')}`,
    )
  }
  await decisions.close()
  raw.decisions = rounds
  const base = settings.policyCounts[0]
  const rows = [
    [
      'policies',
      'explain p50 ms median (min–max)',
      'p99 ms',
      'authorize p50 ms',
      'p99 ms',
      `explain p50 / ${base} policy (same round)`,
    ],
  ]
  const ratios = {}
  for (const n of settings.policyCounts) {
    const of = (method, key) => rounds.map((r) => r[n][method][key])
    ratios[n] = rounds.map((r) => r[n].explain.p50 / r[base].explain.p50)
    rows.push([
      String(n),
      range(of('explain', 'p50'), 3),
      fmt(median(of('explain', 'p99')), 3),
      fmt(median(of('authorize', 'p50')), 3),
      fmt(median(of('authorize', 'p99')), 3),
      range(ratios[n], 2),
    ])
  }
  log(`\n${table(rows)}`)
  const largest = settings.policyCounts.at(-1)
  const ratio = median(ratios[largest])
  const ok = largest === base || rounds.length === 0 ? undefined : ratio <= TARGET.decisionRatio
  verdicts.push({ target: 'decision p50 ratio', policies: largest, ratio, ok })
  log(
    `${verdict(ok)}  decision p50 with ${largest} policies is ${fmt(ratio, 2)}x the ${base}-policy p50 (target <= ${TARGET.decisionRatio}x, explain, same round)`,
  )
}

run.finish({ ...raw, verdicts }, log)
