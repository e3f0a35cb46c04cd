import type { Clock } from '../lib/clock.js'
import type { Grants } from '../oauth/grants.js'
import { authorizePartially, type CedarContext, type CedarEntity, unknownValue } from './cedar.js'
import { buildContext, ENTITY, type EntityDeps, loadSubjects, toolEntities } from './entities.js'
import type { Finding } from './explain.js'
import type { ActionSlice, PolicySetLoader } from './policy-set-loader.js'
import type { EntityRef, Policies, PolicyEngine, SimulatedAction } from './types.js'
import {
  failClosed,
  fitState,
  invalidRequest,
  labels,
  peopleOf,
  refusedFor,
  runCedar,
  sentence,
  stateMisfit,
  type Verdict,
  verdictOf,
} from './verdict.js'

// "What may agent X do for person Y" (issue 5 §3): every declared tool decided with what is
// known before a call — the consented scopes, the person's stored state — and, where a policy
// reads the arguments the simulation does not have, "depends on the arguments" rather than a
// guess. Nothing is recorded: a simulation allows nothing.

/** What the simulation reads beyond the entities: the declared tools, consents and the set. */
export interface SimulationDeps extends EntityDeps {
  clock: Clock
  policies: Pick<Policies, 'actions'>
  grants: Pick<Grants, 'consentedScopes'>
  set: PolicySetLoader
}

/** The engine's `simulate`. */
export function createSimulation(deps: SimulationDeps): Pick<PolicyEngine, 'simulate'> {
  /** The person's stored MCP state for a server (`mcp_user_state`), as JSON values. */
  async function personState(resource: string, sub: string): Promise<Record<string, unknown>> {
    const rows = await deps.store.db
      .selectFrom('mcp_user_state')
      .select(['key', 'value'])
      .where('resource', '=', resource)
      .where('sub', '=', sub)
      .execute()
    const state: Record<string, unknown> = {}
    for (const row of rows) {
      try {
        state[row.key] = JSON.parse(row.value)
      } catch {
        // A value that is not JSON is no value at all: left out, as if never stored.
      }
    }
    return state
  }

  return {
    async simulate(query) {
      const set = await deps.set.current()
      const who = await loadSubjects(deps, query)
      // Tools only: `read` needs a document, which retrieval (filterReadable) names.
      const declared = (await deps.policies.actions()).filter(
        (a): a is typeof a & { resource: string } => a.resource !== null,
      )
      if (!who.ok) {
        const { problem } = who
        const verdict = refusedFor(problem)
        return declared.map((action) => simulated(action.id, action.resource, verdict, problem))
      }
      const { subjects } = who
      const people = peopleOf(subjects)
      const rows: SimulatedAction[] = []
      for (const action of declared) {
        const [scopes, state] = await Promise.all([
          query.clientId === undefined
            ? []
            : deps.grants.consentedScopes(query.sub, query.clientId, action.resource),
          personState(action.resource, query.sub),
        ])
        const inForce = deps.set.inForce() ?? set
        const slice = inForce?.actions.get(action.id)
        if (!inForce || !slice) {
          const finding: Finding = inForce
            ? { kind: 'unknown_action' }
            : { kind: 'no_policy_set', message: deps.set.lastLoadError() ?? 'not loaded' }
          rows.push(simulated(action.id, action.resource, failClosed(finding), people))
          continue
        }
        const misfit = stateMisfit(slice.shape, state)
        if (misfit !== undefined) {
          rows.push(simulated(action.id, action.resource, invalidRequest(misfit), people))
          continue
        }
        const resource = { type: ENTITY.tool, id: action.id }
        // Without the schema, Cedar knows the action's group only from the entities.
        const entities = [...subjects.entities, ...toolEntities(resource.id), ...slice.entities]
        const principal = { type: ENTITY.person, id: subjects.person.id }
        const now = deps.clock.now()
        const contextFor = (approved: boolean, args: CedarContext[string]): CedarContext => ({
          ...buildContext(
            slice.shape,
            { scopes, state: fitState(slice.shape, state), approved },
            { agentId: subjects.agent?.clientId, now },
          ),
          ...(slice.shape.arguments ? { arguments: args } : {}),
        })
        const dependsOn = argumentDependence(slice, (approved) => ({
          principal,
          action: { type: ENTITY.action, id: action.id },
          resource,
          context: contextFor(approved, unknownValue('arguments')),
          entities,
        }))
        if (dependsOn.length > 0) {
          rows.push({
            action: action.id,
            resource: action.resource,
            decision: 'depends_on_arguments',
            policies: dependsOn,
            explanation: sentence(
              { ...people, action: action.id },
              { kind: 'depends_on_arguments', policies: labels(inForce, dependsOn) },
            ),
          })
          continue
        }
        // Arguments play no part here; the request is checked without the schema, which would
        // want the required arguments the simulation does not have.
        const verdict = verdictOf(inForce, slice, false, (approved) =>
          runCedar(
            undefined,
            slice,
            principal,
            action.id,
            resource,
            contextFor(approved, {}),
            entities,
          ),
        )
        rows.push(simulated(action.id, action.resource, verdict, people))
      }
      return rows
    },
  }
}

/**
 * The policies that make a simulated decision depend on the tool's arguments: with the arguments
 * unknown, Cedar's partial evaluation leaves the decision open and a policy still open reads
 * them. Cedar keeps any policy that touches the context open once part of it is unknown, hence
 * the second condition. Checked with and, when it matters, without approval.
 */
function argumentDependence(
  slice: ActionSlice,
  request: (approved: boolean) => {
    principal: EntityRef
    action: EntityRef
    resource: EntityRef
    context: CedarContext
    entities: readonly CedarEntity[]
  },
): string[] {
  if (slice.readsArguments.size === 0) return []
  const open = (approved: boolean): string[] => {
    const r = request(approved)
    const answer = authorizePartially({
      principal: r.principal,
      action: r.action,
      resource: r.resource,
      context: r.context,
      entities: [...r.entities],
      policies: { staticPolicies: { ...slice.texts } },
      validateRequest: false,
    })
    // A request Cedar cannot even partially evaluate is decided (and explained) by the full run.
    if (answer.type !== 'residuals' || answer.response.decision !== null) return []
    return answer.response.nontrivialResiduals.filter((id) => slice.readsArguments.has(id)).sort()
  }
  const withoutApproval = open(false)
  if (withoutApproval.length > 0 || !slice.readsApproved) return withoutApproval
  return open(true)
}

function simulated(
  action: string,
  resource: string | null,
  verdict: Verdict,
  people: { person: string; agent?: string | undefined },
): SimulatedAction {
  return {
    action,
    resource,
    decision: verdict.decision,
    policies: verdict.policies,
    explanation: sentence({ ...people, action }, verdict.finding),
  }
}
