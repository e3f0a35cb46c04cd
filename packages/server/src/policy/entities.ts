import type { Users } from '../identity/users.js'
import type { Clients } from '../oauth/clients.js'
import type { Store } from '../store/db.js'
import type { CedarContext, CedarEntity, CedarType } from './cedar.js'
import { chunks, MAX_DEPTH, subjectIn } from './relationships.js'
import { fitToCedarType } from './schema.js'
import {
  type AuthorizationRequest,
  CEDAR_NAMESPACE,
  type EntityRef,
  type Relationships,
  type TupleSubject,
} from './types.js'

// The entity slice and context of one decision: the person, the agent, the resource and their
// parents — only what this decision can look at, never the whole world (issue 5 §2).

/** The entity types of Deputy's Cedar model, fully named. */
export const ENTITY = {
  person: `${CEDAR_NAMESPACE}::Person`,
  role: `${CEDAR_NAMESPACE}::Role`,
  group: `${CEDAR_NAMESPACE}::Group`,
  agent: `${CEDAR_NAMESPACE}::Agent`,
  server: `${CEDAR_NAMESPACE}::Server`,
  tool: `${CEDAR_NAMESPACE}::Tool`,
  folder: `${CEDAR_NAMESPACE}::Folder`,
  document: `${CEDAR_NAMESPACE}::Document`,
  action: `${CEDAR_NAMESPACE}::Action`,
} as const

/** Relationship-tuple types and the Cedar entity types they stand for. */
const TUPLE_TYPES: Readonly<Record<string, string>> = {
  doc: ENTITY.document,
  folder: ENTITY.folder,
}

/** The Cedar entity type of a tuple object type (`doc` → `Deputy::Document`), if it has one. */
export function cedarTypeOfTupleType(type: string): string | undefined {
  return TUPLE_TYPES[type]
}

/** The tuple object type of a Cedar entity type (`Deputy::Document` → `doc`), if it has one. */
export function tupleTypeOfCedarType(type: string): string | undefined {
  return Object.entries(TUPLE_TYPES).find(([, cedar]) => cedar === type)?.[0]
}

/** `Tool` → `Deputy::Tool`; an already qualified name is kept. */
export function qualifiedType(type: string): string {
  return type.includes('::') ? type : `${CEDAR_NAMESPACE}::${type}`
}

/** What is known of the person and the agent of a request, ready for every decision they make. */
export interface Subjects {
  readonly person: { readonly id: string; readonly email: string }
  readonly agent?: { readonly clientId: string; readonly name: string }
  /** The person's userset expansion (`user:<sub>`, `user:*`, `group:eng#member`, …). */
  readonly expansion: readonly TupleSubject[]
  /** Person, roles, groups and agent: the part of every slice that does not depend on the resource. */
  readonly entities: readonly CedarEntity[]
}

/**
 * Why there is nobody to decide for: the request is denied before Cedar is asked. `person` is the
 * person's email when known (their `sub` otherwise), `agent` the agent's name when known.
 */
export type SubjectsProblem = {
  readonly person: string
  readonly agent?: string
} & (
  | { readonly reason: 'unknown_person'; readonly sub: string }
  | { readonly reason: 'person_disabled' }
  | { readonly reason: 'unknown_agent'; readonly clientId: string }
  | { readonly reason: 'agent_disabled' }
)

export interface EntityDeps {
  store: Store
  users: Users
  clients: Clients
  relationships: Relationships
}

/**
 * The person (`Deputy::Person` with their roles and every group reached through `group:g#member`
 * tuples as parents, custom claims as tags) and the agent (`Deputy::Agent`), or why the request
 * cannot be decided for them: an unknown or disabled person or agent.
 */
export async function loadSubjects(
  deps: EntityDeps,
  who: { sub: string; clientId?: string | undefined },
): Promise<{ ok: true; subjects: Subjects } | { ok: false; problem: SubjectsProblem }> {
  const [user, client, expansion] = await Promise.all([
    deps.users.findById(who.sub),
    who.clientId === undefined ? undefined : deps.clients.get(who.clientId),
    deps.relationships.expandSubject({ type: 'user', id: who.sub }),
  ])
  if (!user)
    return { ok: false, problem: { reason: 'unknown_person', sub: who.sub, person: who.sub } }
  const person = user.email
  if (user.status !== 'active') return { ok: false, problem: { reason: 'person_disabled', person } }
  if (who.clientId !== undefined) {
    if (!client)
      return { ok: false, problem: { reason: 'unknown_agent', clientId: who.clientId, person } }
    if (client.status !== 'active')
      return { ok: false, problem: { reason: 'agent_disabled', person, agent: client.name } }
  }
  const groups = expansion
    .filter((s) => s.type === 'group' && s.relation === 'member')
    .map((s) => s.id)
  const roles = [...new Set(user.roles)]
  const entities: CedarEntity[] = [
    {
      uid: { type: ENTITY.person, id: user.id },
      attrs: {
        email: user.email,
        name: user.name,
        roles: roles,
        permissions: [...new Set(user.permissions)],
      },
      parents: [
        ...roles.map((id) => ({ type: ENTITY.role, id })),
        ...groups.map((id) => ({ type: ENTITY.group, id })),
      ],
      tags: claimTags(user.claims),
    },
    ...roles.map((id) => plainEntity(ENTITY.role, id)),
    // Every group the person reaches is already a direct parent, so the groups need no parents
    // of their own for `principal in Deputy::Group::"all"` to hold through `eng`.
    ...groups.map((id) => plainEntity(ENTITY.group, id)),
  ]
  if (client) {
    const domain = client.kind === 'metadata_document' ? hostOf(client.clientId) : undefined
    entities.push({
      uid: { type: ENTITY.agent, id: client.clientId },
      attrs: {
        clientId: client.clientId,
        name: client.name,
        kind: client.kind,
        // Registered by an operator; dynamic registrations and metadata documents are third parties.
        firstParty: client.kind === 'registered',
        ...(domain === undefined ? {} : { verifiedDomain: domain }),
      },
      parents: [],
    })
  }
  return {
    ok: true,
    subjects: {
      person: { id: user.id, email: user.email },
      ...(client ? { agent: { clientId: client.clientId, name: client.name } } : {}),
      expansion,
      entities,
    },
  }
}

/** Custom claims as Cedar tags: strings as they are, other JSON values as their JSON text. */
function claimTags(claims: Record<string, unknown>): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const [name, value] of Object.entries(claims)) {
    if (value === undefined) continue
    tags[name] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  return tags
}

/** The domain a metadata-document client proved it controls: the host serving its client_id. */
function hostOf(clientId: string): string | undefined {
  try {
    return new URL(clientId).hostname
  } catch {
    return undefined
  }
}

function plainEntity(type: string, id: string, parents: readonly EntityRef[] = []): CedarEntity {
  return { uid: { type, id }, attrs: {}, parents: parents.map((p) => ({ type: p.type, id: p.id })) }
}

/** The tool `<resource>#<name>` and its server, as `Deputy::Tool` in `Deputy::Server`. */
export function toolEntities(id: string): CedarEntity[] {
  // RFC 8707 §2: a resource indicator has no fragment, so the last `#` separates the tool name.
  const cut = id.lastIndexOf('#')
  const server = cut === -1 ? id : id.slice(0, cut)
  const name = cut === -1 ? '' : id.slice(cut + 1)
  return [
    {
      uid: { type: ENTITY.tool, id },
      attrs: { name, server },
      parents: [{ type: ENTITY.server, id: server }],
    },
    { uid: { type: ENTITY.server, id: server }, attrs: { uri: server }, parents: [] },
  ]
}

/**
 * A document or folder and its ancestors (from `parent` tuples). Every ancestor is a direct
 * parent of the resource, so `resource in Deputy::Folder::"x"` holds for a folder any number of
 * levels up without handing Cedar the folders' own links.
 */
export function documentEntities(
  resource: EntityRef,
  ancestors: readonly { type: string; id: string }[],
): CedarEntity[] {
  const folders = ancestors.filter((a) => a.type === 'folder').map((a) => a.id)
  const unique = [...new Set(folders)].filter(
    (id) => !(resource.type === ENTITY.folder && id === resource.id),
  )
  const parents = unique.map((id) => ({ type: ENTITY.folder, id }))
  return [
    plainEntity(resource.type, resource.id, parents),
    ...unique.map((id) => plainEntity(ENTITY.folder, id)),
  ]
}

/** The resource part of a slice: a tool and its server, a document and its folders, or itself. */
export async function resourceEntities(
  relationships: Relationships,
  resource: EntityRef,
): Promise<CedarEntity[]> {
  if (resource.type === ENTITY.tool) return toolEntities(resource.id)
  const tupleType = tupleTypeOfCedarType(resource.type)
  if (tupleType !== undefined) {
    const ancestors = await relationships.ancestors({ type: tupleType, id: resource.id })
    return documentEntities(resource, ancestors)
  }
  if (resource.type === ENTITY.server)
    return [{ uid: { ...resource }, attrs: { uri: resource.id }, parents: [] }]
  return [plainEntity(resource.type, resource.id)]
}

/** The relations a person holds on `resource` when the request did not say (`read` needs them). */
export async function relationsOf(
  relationships: Relationships,
  resource: EntityRef,
  sub: string,
): Promise<string[]> {
  const tupleType = tupleTypeOfCedarType(resource.type)
  if (tupleType === undefined) return []
  return relationships.relations({
    object: { type: tupleType, id: resource.id },
    subject: { type: 'user', id: sub },
  })
}

/**
 * For many objects of one type at once (the retrieval filter): the relations `subjects` hold on
 * each and each one's ancestors, with one query for the relations and one per level of folders,
 * rather than two calls per object. Same rules as relationships.ts: a subject matches a tuple
 * when its type, id and relation (`''` for a plain subject) are the tuple's.
 */
export async function batchFacts(
  store: Store,
  query: { type: string; objects: readonly string[]; subjects: readonly TupleSubject[] },
): Promise<Map<string, { relations: string[]; ancestors: { type: string; id: string }[] }>> {
  const facts = new Map<
    string,
    { relations: string[]; ancestors: { type: string; id: string }[] }
  >()
  for (const id of query.objects) facts.set(id, { relations: [], ancestors: [] })
  if (query.objects.length === 0 || query.subjects.length === 0) return facts
  const db = store.db
  for (const part of chunks(query.objects, BATCH)) {
    const rows = await db
      .selectFrom('relationship_tuples')
      .select(['object_id', 'relation'])
      .distinct()
      .where('object_type', '=', query.type)
      .where('object_id', 'in', part)
      .where(subjectIn(query.subjects))
      .execute()
    for (const row of rows) facts.get(row.object_id)?.relations.push(row.relation)
  }
  for (const fact of facts.values()) fact.relations.sort()

  // Ancestors level by level for every object together; `reach` maps a node to the objects
  // whose ancestor it is, so one query per level serves them all.
  let frontier = new Map<string, { type: string; id: string; of: Set<string> }>()
  for (const id of query.objects)
    frontier.set(`${query.type}:${id}`, { type: query.type, id, of: new Set([id]) })
  const seen = new Map<string, Set<string>>()
  for (const [key, node] of frontier) seen.set(key, new Set(node.of))
  for (let depth = 0; depth < MAX_DEPTH && frontier.size > 0; depth++) {
    const nodes = [...frontier.values()]
    const next = new Map<string, { type: string; id: string; of: Set<string> }>()
    for (const part of chunks(nodes, BATCH)) {
      const byType = new Map<string, string[]>()
      for (const node of part) byType.set(node.type, [...(byType.get(node.type) ?? []), node.id])
      const rows = await db
        .selectFrom('relationship_tuples')
        .select(['object_type', 'object_id', 'subject_type', 'subject_id'])
        .where('relation', '=', 'parent')
        .where('subject_relation', '=', '')
        .where((eb) =>
          eb.or(
            [...byType].map(([type, ids]) =>
              eb.and([eb('object_type', '=', type), eb('object_id', 'in', ids)]),
            ),
          ),
        )
        .orderBy('subject_type')
        .orderBy('subject_id')
        .execute()
      for (const row of rows) {
        const child = frontier.get(`${row.object_type}:${row.object_id}`)
        if (!child) continue
        const key = `${row.subject_type}:${row.subject_id}`
        const already = seen.get(key) ?? new Set<string>()
        seen.set(key, already)
        for (const object of child.of) {
          if (already.has(object)) continue
          already.add(object)
          facts.get(object)?.ancestors.push({ type: row.subject_type, id: row.subject_id })
          const node = next.get(key) ?? {
            type: row.subject_type,
            id: row.subject_id,
            of: new Set(),
          }
          node.of.add(object)
          next.set(key, node)
        }
      }
    }
    frontier = next
  }
  return facts
}

const BATCH = 500

/** The context attributes an action declares, from the schema in force. */
export type ContextShape = Readonly<Record<string, CedarType>>

/**
 * The Cedar context of a request, shaped to what the action's context declares: the agent (when
 * one acts), the token's scopes, the time (`now` as a Cedar datetime, `hour` in UTC), whether the
 * person approved, the delegation chain (`chain`, `depth`), and, when declared, the tool's arguments and the person's state (what does not
 * fit the declared types was refused before, see `misfitOf`; undeclared keys are left out) and the
 * person's relations to the resource.
 */
export function buildContext(
  shape: ContextShape,
  request: Pick<AuthorizationRequest, 'scopes' | 'arguments' | 'state' | 'approved' | 'chain'>,
  facts: { agentId?: string | undefined; now: Date; relations?: readonly string[] | undefined },
): CedarContext {
  const context: CedarContext = {
    scopes: [...new Set(request.scopes ?? [])].filter((s) => typeof s === 'string'),
    now: { __extn: { fn: 'datetime', arg: facts.now.toISOString() } },
    hour: facts.now.getUTCHours(),
    approved: request.approved === true,
    chain: [...new Set(request.chain ?? [])].filter((a) => typeof a === 'string'),
    depth: request.chain?.length ?? 0,
  }
  if (facts.agentId !== undefined)
    context.agent = { __entity: { type: ENTITY.agent, id: facts.agentId } }
  if (shape.arguments) context.arguments = fitted(shape.arguments, request.arguments)
  if (shape.state) context.state = fitted(shape.state, request.state)
  if (shape.relations) context.relations = [...new Set(facts.relations ?? [])]
  return context
}

function fitted(type: CedarType, value: unknown): CedarContext[string] {
  return (fitToCedarType(type, value ?? {}) ?? {}) as CedarContext[string]
}
