import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import {
  batchFacts,
  buildContext,
  cedarTypeOfTupleType,
  documentEntities,
  ENTITY,
  type EntityDeps,
  loadSubjects,
} from './entities.js'
import type { PolicySetLoader } from './policy-set-loader.js'
import { READ_ACTION } from './schema.js'
import type { PolicyEngine } from './types.js'
import { runCedar, verdictOf } from './verdict.js'

// Retrieval (issue 5 §2): of the documents a search found, the ones the person may `read`
// through the agent. The tuples narrow the candidates in one query, Cedar decides each that is
// left with the facts of all fetched at once, and one `policy.filtered` event records the count.

/** What retrieval reads beyond the entities: the clock, the set in force, the chain. */
export interface RetrievalDeps extends EntityDeps {
  clock: Clock
  audit: AuditLog
  set: PolicySetLoader
}

/** The engine's `filterReadable`. */
export function createRetrieval(deps: RetrievalDeps): Pick<PolicyEngine, 'filterReadable'> {
  return {
    async filterReadable(query) {
      const relation = query.relation ?? 'viewer'
      const cedarType = cedarTypeOfTupleType(query.type)
      if (cedarType === undefined) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `type must be doc or folder (the types Cedar's read action applies to), not "${query.type}"`,
        )
      }
      const set = await deps.set.current()
      const who = await loadSubjects(deps, query)
      const related = who.ok
        ? await deps.relationships.filter({
            subject: { type: 'user', id: query.sub },
            relation,
            type: query.type,
            objects: query.objects,
          })
        : []
      const readable: string[] = []
      let version = deps.set.inForce()?.version ?? -1
      if (who.ok && related.length > 0) {
        const { subjects } = who
        const facts = await batchFacts(deps.store, {
          type: query.type,
          objects: related,
          subjects: subjects.expansion,
        })
        const inForce = deps.set.inForce() ?? set
        const slice = inForce?.actions.get(READ_ACTION)
        if (inForce && slice) {
          version = inForce.version
          const principal = { type: ENTITY.person, id: subjects.person.id }
          const now = deps.clock.now()
          for (const id of related) {
            const fact = facts.get(id) ?? { relations: [], ancestors: [] }
            const resource = { type: cedarType, id }
            const entities = [...subjects.entities, ...documentEntities(resource, fact.ancestors)]
            const verdict = verdictOf(inForce, slice, false, (approved) =>
              runCedar(
                inForce,
                slice,
                principal,
                READ_ACTION,
                resource,
                buildContext(
                  slice.shape,
                  { approved },
                  { agentId: subjects.agent?.clientId, now, relations: fact.relations },
                ),
                entities,
              ),
            )
            // Needs-approval is not readable: retrieval cannot stop to ask.
            if (verdict.decision === 'allow') readable.push(id)
          }
        }
      }
      const person: Actor = {
        type: 'user',
        id: query.sub,
        ...(who.ok ? { label: who.subjects.person.email } : {}),
      }
      await deps.audit.append({
        type: 'policy.filtered',
        actor: query.clientId === undefined ? person : { type: 'agent', id: query.clientId },
        onBehalfOf: query.clientId === undefined ? null : person,
        target: null,
        decision: null,
        reason: who.ok ? null : who.problem.reason,
        data: {
          action: READ_ACTION,
          type: query.type,
          relation,
          candidates: query.objects.length,
          related: related.length,
          readable: readable.length,
          set_version: version,
        },
      })
      return readable
    },
  }
}
