// One process of scenario (b): a Deputy (its own SQLite file) with `count` stored policies. It
// sets up, checks, and measures when the runner asks, over IPC; one engine per process, as in
// production.
import { fileURLToPath } from 'node:url'
import { summarize } from '../lib/runner.mjs'
import { openBenchDeputy, timed } from './lib/common.mjs'
import {
  DEPARTMENTS,
  generatePeople,
  generatePolicies,
  requestStream,
  TEAMS,
  toolDeclarations,
} from './lib/policies.mjs'

const ROLES = fileURLToPath(
  new URL('../../packages/server/dist/identity/roles.js', import.meta.url),
)
const actor = { type: 'system', id: 'bench' }
/** Statements per `policies.put` (each put validates its statements against the schema). */
const PUT_BATCH = 100

/** A Deputy with the tools declared, `count` policies stored, people, groups and agents. */
async function setup(count) {
  const { createRoles } = await import(ROLES)
  const deputy = await openBenchDeputy(`decisions-${count}`)
  const { deps } = deputy
  const start = process.hrtime.bigint()
  await deps.policies.declareActions(toolDeclarations(), actor)
  const roles = createRoles(deps)
  await roles.add({ name: 'finance', permissions: ['tools:use', 'payments:approve'] }, actor)
  await roles.add({ name: 'support', permissions: ['tools:use'] }, actor)
  await roles.add({ name: 'operator', permissions: ['tools:admin'] }, actor)
  const people = []
  for (const p of generatePeople()) {
    const user = await deps.users.create(
      { email: p.email, name: p.name, roles: p.roles, claims: p.claims },
      actor,
    )
    people.push({ ...p, id: user.id })
  }
  // Teams nested in departments, people in teams: each person's groups come from tuples.
  await deps.relationships.write(
    [
      ...TEAMS.map((team, i) => ({
        object: { type: 'group', id: DEPARTMENTS[i % DEPARTMENTS.length] },
        relation: 'member',
        subject: { type: 'group', id: team, relation: 'member' },
      })),
      ...people.flatMap((p) =>
        p.teams.map((team) => ({
          object: { type: 'group', id: team },
          relation: 'member',
          subject: { type: 'user', id: p.id },
        })),
      ),
    ],
    actor,
  )
  const agents = []
  for (const name of ['bench first-party agent', 'bench second agent']) {
    const created = await deps.clients.register(
      { name, grantTypes: ['client_credentials'], allowedScopes: ['tools.read', 'tools.write'] },
      actor,
    )
    agents.push(created.client.clientId)
  }
  const texts = generatePolicies(count)
  for (let i = 0; i < texts.length; i += PUT_BATCH)
    await deps.policies.put(texts.slice(i, i + PUT_BATCH).join('\n\n'), actor)
  await deps.policy.refresh()
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  return {
    count,
    deputy,
    people,
    agents,
    stored: (await deps.policies.list()).length,
    version: deps.policy.loadedVersion(),
    setupMs: ms,
  }
}

/**
 * Decisions are made and explained without policy errors: a probe with a known answer (p-0000
 * is in every set: team-0 may use tool_0_0 with tools.write), then 400 random calls.
 */
async function check({ count, deputy, people, agents }) {
  const problems = []
  const { policy } = deputy.deps
  const person0 = people.find((p) => p.teams.includes('team-0'))
  const probe = await policy.explain({
    sub: person0.id,
    clientId: agents[0],
    action: 'https://tools-0.example/mcp#tool_0_0',
    resource: { type: 'Deputy::Tool', id: 'https://tools-0.example/mcp#tool_0_0' },
    scopes: ['tools.write'],
    arguments: { target: 'acct-1', amount: 1 },
    state: { mode: 'normal' },
  })
  if (probe.decision !== 'allow' || !probe.policies.includes('p-0000'))
    problems.push(
      `decisions: ${count} policies: the probe was ${probe.decision} (${probe.policies.join(', ')}): ${probe.explanation}`,
    )
  const next = requestStream(people, agents, 99)
  const outcomes = {}
  for (let i = 0; i < 400; i++) {
    const d = await policy.explain(next())
    outcomes[d.decision] = (outcomes[d.decision] ?? 0) + 1
    if (d.errors.length > 0)
      problems.push(`decisions: ${count} policies: policy errors ${JSON.stringify(d.errors)}`)
  }
  return { probe: { decision: probe.decision, policies: probe.policies }, outcomes, problems }
}

/** `samples` calls of `policy[method]` after `warmup`, the request sequence seeded by `seed`. */
async function measure({ deputy, people, agents }, { method, seed, samples, warmup }) {
  const { policy } = deputy.deps
  // The same request sequence for every policy count.
  const next = requestStream(people, agents, seed)
  for (let i = 0; i < warmup; i++) await policy[method](next())
  const ms = []
  for (let i = 0; i < samples; i++) {
    const request = next()
    ms.push((await timed(() => policy[method](request))).ms)
  }
  return summarize(ms)
}

let state
process.on('message', async (m) => {
  try {
    if (m.type === 'setup') {
      state = await setup(m.count)
      const { count, stored, version, setupMs } = state
      process.send({ type: 'ready', count, stored, version, setupMs, ...(await check(state)) })
    } else if (m.type === 'measure') {
      process.send({ type: 'result', result: await measure(state, m) })
    } else if (m.type === 'close') {
      await state?.deputy.close()
      process.exit(0)
    }
  } catch (err) {
    process.send({ type: 'error', message: err instanceof Error ? err.message : String(err) })
  }
})
