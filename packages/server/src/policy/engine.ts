import type { Logger } from 'pino'
import type { AuditLog } from '../audit/types.js'
import type { Users } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import type { Clients } from '../oauth/clients.js'
import type { Grants } from '../oauth/grants.js'
import type { Store } from '../store/db.js'
import type { Policies, PolicyEngine, Relationships } from './types.js'

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

/** The Cedar decision point (skeleton: implemented in the policy-core change). */
export function createPolicyEngine(_deps: PolicyEngineDeps): PolicyEngine {
  // Placeholder until implemented: every method throws, construction does not.
  return new Proxy({} as never, {
    get: (_target, property) => () => {
      if (property === 'close') return

      throw new Error('not implemented yet')
    },
  })
}
