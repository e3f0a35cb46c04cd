import type { AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import type { Store } from '../store/db.js'
import type { Relationships } from './types.js'

export interface RelationshipsDeps {
  store: Store
  clock: Clock
  audit: AuditLog
}

/** Relationship tuples (skeleton: implemented in the relationships change). */
export function createRelationships(_deps: RelationshipsDeps): Relationships {
  // Placeholder until implemented: every method throws, construction does not.
  return new Proxy({} as never, {
    get: () => () => {
      throw new Error('not implemented yet')
    },
  })
}
