import type { AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import type { Store } from '../store/db.js'
import type { Policies } from './types.js'

export interface PoliciesDeps {
  store: Store
  clock: Clock
  audit: AuditLog
}

/** The versioned policy store (skeleton: implemented in the policy-core change). */
export function createPolicies(_deps: PoliciesDeps): Policies {
  // Placeholder until implemented: every method throws, construction does not.
  return new Proxy({} as never, {
    get: () => () => {
      throw new Error('not implemented yet')
    },
  })
}
