import { formatSubject, WILDCARD } from './tuple-syntax.js'
import type { Relationships, RelationshipTuple, TupleSubject } from './types.js'

// Why a check answers yes: the chain of stored tuples from the subject to the relation on the
// object (`group:eng#member@user:alice`, then `doc:readme#viewer@group:eng#member`). Built on the
// Relationships contract alone, after `check` has answered, so the answer itself stays the one
// the decision point uses.

/** Most usersets whose tuples are read while looking for the path. */
const MAX_VISITED = 500

/** A check's answer and, when it is yes, the tuples that make it so, subject side first. */
export interface ExplainedCheck {
  allowed: boolean
  /** Null when not allowed, or when the path is longer than MAX_VISITED usersets. */
  path: RelationshipTuple[] | null
}

/**
 * Does `subject` have `relation` on `object` (relationships.check), and through which tuples: a
 * breadth-first walk over the subject's expansion, so the path found is a shortest one.
 */
export async function explainCheck(
  relationships: Pick<Relationships, 'check' | 'expandSubject' | 'read'>,
  query: { object: { type: string; id: string }; relation: string; subject: TupleSubject },
): Promise<ExplainedCheck> {
  if (!(await relationships.check(query))) return { allowed: false, path: null }
  const reachable = new Set((await relationships.expandSubject(query.subject)).map(formatSubject))
  const start: TupleSubject[] = [query.subject]
  if (query.subject.relation === undefined && query.subject.id !== WILDCARD)
    start.push({ type: query.subject.type, id: WILDCARD })
  // Each userset reached, with the tuples that lead to it from the subject.
  const via = new Map<string, RelationshipTuple[]>(start.map((s) => [formatSubject(s), []]))
  let frontier = start
  while (frontier.length > 0 && via.size <= MAX_VISITED) {
    const next: TupleSubject[] = []
    for (const node of frontier) {
      const before = via.get(formatSubject(node)) ?? []
      const [direct] = await relationships.read(
        { object: query.object, relation: query.relation, subject: node },
        1,
      )
      if (direct) return { allowed: true, path: [...before, direct] }
      for (const tuple of await relationships.read({ subject: node }, MAX_VISITED)) {
        const userset = { ...tuple.object, relation: tuple.relation }
        const key = formatSubject(userset)
        if (!reachable.has(key) || via.has(key)) continue
        via.set(key, [...before, tuple])
        next.push(userset)
      }
    }
    frontier = next
  }
  return { allowed: true, path: null }
}
