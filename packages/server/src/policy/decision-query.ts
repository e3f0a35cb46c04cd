import type { Users } from '../identity/users.js'
import { DeputyError } from '../lib/errors.js'
import { cedarTypeOfTupleType, ENTITY } from './entities.js'
import { READ_ACTION, toolActionId } from './schema.js'
import { parseObject } from './tuple-syntax.js'
import type { AuthorizationRequest, EntityRef, Policies } from './types.js'

// Building a decision request from what a person types (the CLI) or sends (the admin API): the
// person by id or email, the action by id or tool name, the resource by URL or `doc:x`.

/** What resolving a query reads: the declared actions and the people. */
export interface DecisionQueryDeps {
  policies: Pick<Policies, 'actions'>
  users: Pick<Users, 'findById' | 'findByEmail'>
}

/**
 * The `sub` of the person a decision is about, given their user id or their email. Someone Deputy
 * does not know is passed on as given: the engine's decision then says there is no such person
 * (and `authorize` records it), rather than the question failing.
 */
export async function personSub(
  deps: Pick<DecisionQueryDeps, 'users'>,
  person: string,
): Promise<string> {
  if (await deps.users.findById(person)) return person
  const byEmail = person.includes('@') ? await deps.users.findByEmail(person) : undefined
  return byEmail?.id ?? person
}

/** The Cedar entity of a tool: `Deputy::Tool` with id `<resource>#<tool>` (see types.ts). */
export function toolEntity(resource: string, tool: string): EntityRef {
  return { type: ENTITY.tool, id: toolActionId(resource, tool) }
}

/**
 * The action and the resource of a decision, from what a person types. The action is an action
 * id as policies name it (`https://shop.example/mcp#buyMcpShopItem`, `read`) or a tool's name
 * (`buyMcpShopItem`): on the server `resource` names, or on the one server that declares it.
 * The resource is an MCP server's URL (the action's tool on it), `doc:x` or `folder:x`; left out,
 * the action's own tool. A resource that is not the action's own is passed on as given, and the
 * engine refuses it (issue 9 §9): this is how one asks whether a call for server B could be
 * made with server A's action.
 */
export async function resolveTarget(
  deps: DecisionQueryDeps,
  action: string,
  resource: string | undefined,
): Promise<{ action: string; resource: EntityRef }> {
  const given = resource === undefined ? undefined : (tool: string) => entityOf(resource, tool)
  // `read` is Deputy's own, unless a server is named: then it is that server's tool `read`.
  if (action === READ_ACTION && !(resource !== undefined && isServerUrl(resource))) {
    if (resource === undefined)
      throw new DeputyError(
        'ERR_INVALID_INPUT',
        `action ${READ_ACTION} needs a resource, e.g. doc:readme or folder:eng`,
      )
    return { action, resource: entityOf(resource, action) }
  }
  const tools = (await deps.policies.actions()).filter(
    (a): a is typeof a & { resource: string } => a.resource !== null,
  )
  const byId = tools.find((a) => a.id === action)
  if (byId) return { action, resource: given?.(byId.name) ?? toolEntity(byId.resource, byId.name) }
  if (resource !== undefined && isServerUrl(resource))
    return { action: toolActionId(resource, action), resource: toolEntity(resource, action) }
  const named = tools.filter((a) => a.name === action)
  const [only] = named
  if (named.length === 1 && only)
    return { action: only.id, resource: given?.(only.name) ?? toolEntity(only.resource, only.name) }
  if (named.length > 1)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `tool ${action} is declared by ${named.length} servers (${named.map((a) => a.resource).join(', ')}): name the server with resource, or the action by its id, e.g. ${named[0]?.id}`,
    )
  throw new DeputyError(
    'ERR_NOT_FOUND',
    `no action ${action} is declared (\`deputy policy actions\` lists them)`,
  )
}

function isServerUrl(resource: string): boolean {
  return /^https?:\/\//i.test(resource)
}

/** An MCP server's URL (its tool `tool`), or `doc:x` / `folder:x`. */
function entityOf(resource: string, tool: string): EntityRef {
  if (isServerUrl(resource)) return toolEntity(resource, tool)
  const entityType = cedarTypeOfTupleType(resource.slice(0, Math.max(0, resource.indexOf(':'))))
  if (entityType === undefined)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `resource ${resource} must be an MCP server URL (https://…) or a document or folder (doc:readme, folder:eng)`,
    )
  return { type: entityType, id: parseObject(resource).id }
}

/** A decision request as a person gives it: who, through which agent, does what to what. */
export interface DecisionQuery {
  /** The person: user id or email. */
  person: string
  clientId?: string
  action: string
  resource?: string
  arguments?: unknown
  state?: Record<string, unknown>
  scopes?: readonly string[]
  approved?: boolean
  requestId?: string
}

/** The engine's request for a query, with the person, agent and resource looked up. */
export async function authorizationRequest(
  deps: DecisionQueryDeps,
  query: DecisionQuery,
): Promise<AuthorizationRequest> {
  return {
    sub: await personSub(deps, query.person),
    ...(query.clientId === undefined ? {} : { clientId: query.clientId }),
    ...(await resolveTarget(deps, query.action, query.resource)),
    scopes: query.scopes ?? [],
    ...(query.arguments === undefined ? {} : { arguments: query.arguments }),
    ...(query.state === undefined ? {} : { state: query.state }),
    approved: query.approved === true,
    ...(query.requestId === undefined ? {} : { requestId: query.requestId }),
  }
}
