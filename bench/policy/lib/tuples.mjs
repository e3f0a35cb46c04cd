// A realistic relationship graph for list-objects: people in teams, teams in departments (a few
// in two), departments and a leads group in `all`; documents each with an owner, shared with one
// group, a few public, and the rest of the tuples people shared one by one (viewers and editors).
import { seededRandom } from './common.mjs'

const pad = (n, width) => String(n).padStart(width, '0')

/**
 * Tuples in the text form (`doc:d-00001#viewer@group:team-3#member`), exactly `total` of them,
 * no repeats, the same on every run.
 */
export function generateTuples({ users = 1000, documents = 20_000, total = 100_000, seed = 1 }) {
  const random = seededRandom(seed)
  const tuples = new Set()
  const userIds = Array.from({ length: users }, (_, i) => `u-${pad(i, 4)}`)
  const docIds = Array.from({ length: documents }, (_, i) => `d-${pad(i, 5)}`)
  // 50 groups: 40 teams, 8 departments, `leads` and `all`.
  const teams = Array.from({ length: 40 }, (_, i) => `team-${i}`)
  const departments = Array.from({ length: 8 }, (_, i) => `dept-${i}`)
  const groups = [...teams, ...departments, 'leads', 'all']

  teams.forEach((team, i) => {
    tuples.add(`group:${departments[i % 8]}#member@group:${team}#member`)
    // Every fifth team also belongs to a second department.
    if (i % 5 === 0) tuples.add(`group:${departments[(i + 3) % 8]}#member@group:${team}#member`)
  })
  for (const dept of departments) tuples.add(`group:all#member@group:${dept}#member`)
  tuples.add('group:all#member@group:leads#member')
  for (const user of userIds) {
    const count = 1 + random.int(3)
    for (let k = 0; k < count; k++) tuples.add(`group:${random.pick(teams)}#member@user:${user}`)
    if (random.next() < 0.05) tuples.add(`group:leads#member@user:${user}`)
  }

  for (const doc of docIds) {
    tuples.add(`doc:${doc}#owner@user:${random.pick(userIds)}`)
    // Shared with one group: mostly a team, sometimes a department, rarely everyone.
    const r = random.next()
    const group = r < 0.8 ? random.pick(teams) : r < 0.99 ? random.pick(departments) : 'all'
    tuples.add(`doc:${doc}#viewer@group:${group}#member`)
    if (random.next() < 0.005) tuples.add(`doc:${doc}#viewer@user:*`)
  }
  // The rest: documents shared with people one by one.
  while (tuples.size < total) {
    const relation = random.next() < 0.75 ? 'viewer' : 'editor'
    tuples.add(`doc:${random.pick(docIds)}#${relation}@user:${random.pick(userIds)}`)
  }
  return { tuples: [...tuples], userIds, docIds, groups }
}
