// Scenario (a): list-objects and the retrieval filter over 100,000 relationship tuples on SQLite.
import { fileURLToPath } from 'node:url'
import { summarize } from '../lib/runner.mjs'
import { openBenchDeputy, seededRandom, timed } from './lib/common.mjs'
import { expectedObjects, indexTuples } from './lib/expected.mjs'
import { generateTuples } from './lib/tuples.mjs'

const SYNTAX = fileURLToPath(
  new URL('../../packages/server/dist/policy/tuple-syntax.js', import.meta.url),
)
const actor = { type: 'system', id: 'bench' }
/** The most tuples one write may carry (Relationships.write). */
const BATCH = 1000

/**
 * Seeds a fresh Deputy with the generated graph through `relationships.write` (as the CLI and
 * the admin API do, audit chain on), checks answers against plain JavaScript, then measures.
 */
export async function setupTuples(settings, log, problems) {
  const { parseTuple, formatSubject } = await import(SYNTAX)
  const deputy = await openBenchDeputy('tuples')
  const rel = deputy.deps.relationships
  const graph = generateTuples({
    total: settings.tuples,
    documents: Math.round(settings.tuples / 5),
  })
  const { ms: seedMs } = await timed(async () => {
    for (let i = 0; i < graph.tuples.length; i += BATCH)
      await rel.write(graph.tuples.slice(i, i + BATCH).map(parseTuple), actor)
  })
  const { count } = await deputy.deps.db
    .selectFrom('relationship_tuples')
    .select((eb) => eb.fn.countAll().as('count'))
    .executeTakeFirstOrThrow()
  log(
    `  seeded ${Number(count).toLocaleString('en')} tuples (${graph.userIds.length} users, ${graph.groups.length} groups, ${graph.docIds.length.toLocaleString('en')} documents) through relationships.write in ${(seedMs / 1000).toFixed(1)} s`,
  )
  if (Number(count) !== settings.tuples)
    problems.push(`tuples: expected ${settings.tuples} stored tuples, found ${count}`)

  // Correctness before speed: list-objects and filter against the plain-JavaScript answer.
  const bySubject = indexTuples(graph.tuples)
  const random = seededRandom(7)
  let checked = 0
  for (let k = 0; k < 20; k++) {
    const user = `user:${random.pick(graph.userIds)}`
    const expected = expectedObjects(bySubject, user, 'viewer', 'doc')
    const listed = await rel.listObjects({
      subject: parseSubject(user),
      relation: 'viewer',
      type: 'doc',
    })
    const candidates = Array.from({ length: 100 }, () => random.pick(graph.docIds))
    const filtered = await rel.filter({
      subject: parseSubject(user),
      relation: 'viewer',
      type: 'doc',
      objects: candidates,
    })
    const wantFiltered = [...new Set(candidates)].filter((id) => expected.has(id))
    if (listed.length !== expected.size || listed.some((id) => !expected.has(id)))
      problems.push(
        `tuples: list-objects for ${user} gave ${listed.length} ids, expected ${expected.size}`,
      )
    else if (JSON.stringify(filtered) !== JSON.stringify(wantFiltered))
      problems.push(`tuples: filter for ${user} differs from the expected subset`)
    else checked++
  }
  log(`  list-objects and filter checked against plain JavaScript for ${checked}/20 users`)

  function parseSubject(text) {
    const colon = text.indexOf(':')
    return { type: text.slice(0, colon), id: text.slice(colon + 1) }
  }

  /** One round: `samples` random users per operation, after `warmup` unmeasured ones. */
  async function round(seed) {
    const r = seededRandom(seed)
    const user = () => parseSubject(`user:${r.pick(graph.userIds)}`)
    const ops = {
      'list-objects': () => rel.listObjects({ subject: user(), relation: 'viewer', type: 'doc' }),
      'filter (100 candidates)': () =>
        rel.filter({
          subject: user(),
          relation: 'viewer',
          type: 'doc',
          objects: Array.from({ length: 100 }, () => r.pick(graph.docIds)),
        }),
      check: () =>
        rel.check({
          object: { type: 'doc', id: r.pick(graph.docIds) },
          relation: 'viewer',
          subject: user(),
        }),
      'expand subject': () => rel.expandSubject(user()),
    }
    const results = {}
    for (const [name, op] of Object.entries(ops)) {
      for (let i = 0; i < settings.warmup; i++) await op()
      const ms = []
      let size = 0
      for (let i = 0; i < settings.samples; i++) {
        const { ms: t, result } = await timed(op)
        ms.push(t)
        size += Array.isArray(result) ? result.length : result ? 1 : 0
      }
      results[name] = { ...summarize(ms), size: size / settings.samples }
    }
    return results
  }

  return { round, close: () => deputy.close(), formatSubject }
}
