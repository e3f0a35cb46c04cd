import type { Logger } from 'pino'
import type { AuditLog } from '../audit/types.js'
import type { Users } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import type { Clients } from '../oauth/clients.js'
import type { Grants } from '../oauth/grants.js'
import type { Store } from '../store/db.js'
import { createDecisions } from './decision.js'
import { createPolicySetLoader } from './policy-set-loader.js'
import { createRetrieval } from './retrieval.js'
import { createSimulation } from './simulation.js'
import type { Policies, PolicyEngine, Relationships } from './types.js'

// The policy decision point (issue 5): one policy set in force per process, kept current
// (policy-set-loader.ts), and the three questions asked of it — decide one request
// (decision.ts), what may this agent do for this person (simulation.ts), which of these
// documents may they read (retrieval.ts) — each deciding with Cedar the same way (verdict.ts).

/** What the decision point reads: the policy store, Deputy's people, agents, tuples and consents. */
export interface PolicyEngineDeps {
  store: Store
  clock: Clock
  audit: AuditLog
  logger: Logger
  policies: Policies
  relationships: Relationships
  users: Users
  clients: Clients
  grants: Grants
  /** How often to look for a new policy-set version (config `policyRefreshIntervalMs`). */
  refreshIntervalMs: number
}

/** The Cedar decision point over the stored policies, with entity slices from Deputy's data. */
export function createPolicyEngine(deps: PolicyEngineDeps): PolicyEngine {
  const set = createPolicySetLoader(deps)
  const parts = { ...deps, set }
  return {
    ...createDecisions(parts),
    ...createSimulation(parts),
    ...createRetrieval(parts),
    refresh: () => set.refresh(),
    loadedVersion: () => set.inForce()?.version ?? -1,
    close: () => set.close(),
  }
}
