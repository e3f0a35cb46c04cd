import type { Actor } from '../audit/types.js'

// The contract between Deputy's policy modules: the policy store (policies.ts), the relationship
// tuples (relationships.ts), the decision point (engine.ts) and their surfaces (CLI, admin API,
// the MCP kit). Cedar is the language; these types are what the rest of Deputy sees.

/**
 * The Cedar namespace of Deputy's model: `Deputy::Person`, `Deputy::Action::"read"`, …
 *
 * The model (schema.ts builds it; engine.ts fills it):
 * - `Role` (id = role name); `Group in [Group]` (id = the `group` tuples' id);
 * - `Person in [Role, Group] = { email: String, name: String, roles: Set<String>,
 *   permissions: Set<String> } tags String` — id = the user id (`sub`); parents = the person's
 *   roles and every group reached through `group:g#member` tuples; tags = custom claims (string
 *   values as they are, other JSON values as their JSON text);
 * - `Agent = { clientId: String, name: String, kind: String, firstParty: Bool,
 *   verifiedDomain?: String }` — id = client_id; firstParty = registered by an operator;
 *   verifiedDomain = the host of a Client ID Metadata Document URL;
 * - `Server = { uri: String }` (id = resource indicator); `Tool in [Server] = { name: String,
 *   server: String }` (id = `<resource>#<tool>`);
 * - `Folder in [Folder]`, `Document in [Folder]` (ids of `folder` / `doc` tuples; parents from
 *   `parent` tuples), for retrieval.
 * - One action per declared tool of each server, `Deputy::Action::"<resource>#<tool>"` (the id
 *   of its `Tool`), in its server's action group `Deputy::Action::"<resource>"`: principal
 *   `Person`, resource `Tool` (that tool only: the engine refuses another), context
 *   `{ agent?: Agent, scopes: Set<String>, now: datetime, hour: Long (0–23, UTC),
 *   approved: Bool, chain: Set<String>, depth: Long, arguments: {declared}, state: {declared} }`
 *   (`chain`: the token's `act` actors, `depth` how many); and `read` on `Document` or
 *   `Folder` with context `{ agent?, scopes, now, hour, approved, chain, depth, relations: Set<String> }`.
 * - Annotations: `@id("…")` names a policy, `@description("…")` explains it, `@message("…")` is
 *   the caller's refusal text when that forbid decides.
 */
export const CEDAR_NAMESPACE = 'Deputy'

/** A Cedar entity reference, e.g. `{ type: 'Deputy::Tool', id: 'https://shop.example/mcp#buy' }`. */
export interface EntityRef {
  readonly type: string
  readonly id: string
}

// ---------------------------------------------------------------------------------------------
// Policies

/** Where a problem in a policy text is: 1-based line and column of its start in that text. */
export interface PolicyProblem {
  /** The policy it belongs to, when known. */
  readonly policyId?: string
  readonly line: number
  readonly column: number
  readonly message: string
  /** Cedar's hint, e.g. "did you mean `now`?". */
  readonly help?: string
}

/** A stored policy: one Cedar statement (`permit` or `forbid`) under a stable id. */
export interface StoredPolicy {
  /** From `@id("…")` in the text or given on write; `[A-Za-z0-9._:-]{1,128}`. */
  readonly id: string
  /** This policy's own version: 1 on creation, +1 on each change. */
  readonly version: number
  /** The policy-set version this write produced. */
  readonly setVersion: number
  readonly effect: 'permit' | 'forbid'
  /** The Cedar text as written (annotations included). */
  readonly text: string
  /** `@description("…")`, for explanations and the list. */
  readonly description: string | null
  /** `@message("…")`: the refusal sentence shown to the caller when this forbid decides. */
  readonly message: string | null
  /**
   * Action ids the policy's scope names (`action == …` / `action in [...]`: tools'
   * `<resource>#<tool>`, servers' `<resource>` groups, `read`); null = every action.
   */
  readonly actions: readonly string[] | null
  readonly createdAt: string
  readonly createdBy: string
}

/** One historical version of a policy; `text` is null for the version that removed it. */
export interface PolicyVersion {
  readonly id: string
  readonly version: number
  readonly setVersion: number
  readonly text: string | null
  readonly createdAt: string
  readonly createdBy: string
}

export type PolicyValidation =
  | { readonly ok: true; readonly policies: readonly ParsedPolicy[] }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] }

/** A statement split out of a policy text, with what the store records about it. */
export interface ParsedPolicy {
  readonly id: string
  readonly effect: 'permit' | 'forbid'
  readonly text: string
  readonly description: string | null
  readonly message: string | null
  readonly actions: readonly string[] | null
}

/** The policy store: versioned, validated against the schema on every write. */
export interface Policies {
  /**
   * Parses and validates `text` (one or more statements) against the current schema in strict
   * mode. Every statement needs an id: `@id("…")`, or `options.id` when the text holds one
   * statement. Nothing is stored.
   */
  validate(text: string, options?: { id?: string }): Promise<PolicyValidation>
  /**
   * Validates, then stores every statement of `text` as a new version in one transaction (a new
   * id is created, an existing id gets its next version), and bumps the policy-set version once.
   * Throws DeputyError `ERR_POLICY_INVALID` with `problems` (line, column, message) and stores
   * nothing when any statement is invalid.
   */
  put(text: string, actor: Actor, options?: { id?: string }): Promise<StoredPolicy[]>
  /** Removes a policy (a version with no text); throws `ERR_NOT_FOUND` for an unknown id. */
  remove(id: string, actor: Actor): Promise<void>
  /** The current policies, by id. */
  list(): Promise<StoredPolicy[]>
  /** The newest version of every policy ever written, by id: a removed one's has no text. */
  latestVersions(): Promise<PolicyVersion[]>
  get(id: string): Promise<StoredPolicy | undefined>
  /** Every version of a policy, oldest first. */
  history(id: string): Promise<PolicyVersion[]>
  /** The policy-set version: bumped by every policy write and every change of declared actions. */
  setVersion(): Promise<number>
  /** The actions declared so far (tools of protected MCP servers, plus Deputy's own). */
  actions(): Promise<DeclaredAction[]>
  /**
   * Declares actions (one per tool of a server) with the shape of their arguments and of the
   * person's state policies may read. A tool is identified by its server and its name: another
   * server's tool of the same name is another action, and neither replaces the other.
   * Unchanged declarations are a no-op; a change bumps the set version and is refused
   * (`ERR_POLICY_INVALID`) if a stored policy that validated would no longer validate.
   */
  declareActions(actions: readonly ActionDeclaration[], actor: Actor): Promise<void>
  /** The Cedar schema in force (JSON form), built from Deputy's model and the declared actions. */
  schema(): Promise<CedarSchemaJson>
}

/** The JSON form of a Cedar schema (`{ Deputy: { entityTypes, actions, commonTypes } }`). */
export type CedarSchemaJson = Record<string, unknown>

/**
 * An action policies can name: a tool of a protected MCP server (`buyMcpShopItem` of
 * `https://shop.example/mcp`) or one of Deputy's own (`read` for retrieval). Arguments and state
 * are JSON Schemas (objects only); they
 * become the typed `context.arguments` and `context.state` records the validator checks policies
 * against. A request whose values do not fit the declared types is refused, never decided
 * without them; properties the declaration does not name are left out.
 */
export interface ActionDeclaration {
  /** The tool's name, `[A-Za-z0-9_.:-]{1,128}` (`read` for Deputy's own action). */
  readonly name: string
  /**
   * The resource indicator of the MCP server the tool belongs to: an absolute http(s) URI
   * without a fragment. Null only for Deputy's own actions, which are never declared.
   */
  readonly resource: string | null
  readonly description?: string
  /** JSON Schema of the tool's input (an object schema); the MCP `inputSchema`. */
  readonly arguments?: Record<string, unknown>
  /** JSON Schema (object) of the per-person state keys policies may read, e.g. `{ demoMode }`. */
  readonly state?: Record<string, unknown>
}

/** A declared action with the Cedar action id policies name it by. */
export interface DeclaredAction extends ActionDeclaration {
  /**
   * `<resource>#<name>` for a tool (`Deputy::Action::"https://shop.example/mcp#buyMcpShopItem"`),
   * the name for Deputy's own (`read`).
   */
  readonly id: string
}

// ---------------------------------------------------------------------------------------------
// Relationship tuples (Zanzibar-style: object#relation@subject)

/** `type:id`, optionally `#relation` for a userset subject (`group:eng#member`). */
export interface TupleSubject {
  readonly type: string
  /** `*` means every subject of the type (`user:*`). */
  readonly id: string
  /** Set for a userset: everyone with `relation` on `type:id`. */
  readonly relation?: string
}

export interface RelationshipTuple {
  /** `doc:readme`. */
  readonly object: { readonly type: string; readonly id: string }
  readonly relation: string
  readonly subject: TupleSubject
}

/** Relationship tuples in the database, with userset expansion. */
export interface Relationships {
  /** Writes tuples (idempotent: an existing tuple is kept) in one transaction. */
  write(tuples: readonly RelationshipTuple[], actor: Actor): Promise<{ written: number }>
  /** Deletes tuples (absent ones are ignored) in one transaction. */
  delete(tuples: readonly RelationshipTuple[], actor: Actor): Promise<{ deleted: number }>
  /**
   * Tuples matching a filter (any part may be left out), at most `limit` (default 1000), in
   * object, relation, subject order; `after` pages on: only the tuples that sort after it.
   */
  read(
    filter: {
      object?: { type: string; id?: string }
      relation?: string
      subject?: TupleSubject
      after?: RelationshipTuple
    },
    limit?: number,
  ): Promise<RelationshipTuple[]>
  /** Does `subject` have `relation` on `object`, directly or through usersets (nested groups)? */
  check(query: {
    object: { type: string; id: string }
    relation: string
    subject: TupleSubject
  }): Promise<boolean>
  /** Every object id of `type` on which `subject` has `relation` (through usersets too). */
  listObjects(query: { subject: TupleSubject; relation: string; type: string }): Promise<string[]>
  /**
   * The subset of `objects` (ids of `type`) on which `subject` has `relation`, in their input order,
   * answered with a bounded number of queries whatever the number of candidates.
   */
  filter(query: {
    subject: TupleSubject
    relation: string
    type: string
    objects: readonly string[]
  }): Promise<string[]>
  /**
   * The usersets `subject` belongs to, transitively (`group:eng#member`, `group:all#member`, …),
   * the subject itself and `type:*` included. Bounded depth; cycles are harmless.
   */
  expandSubject(subject: TupleSubject): Promise<TupleSubject[]>
  /**
   * The relations `subject` holds on `object`, directly or through usersets (`['owner','viewer']`):
   * Cedar's `context.relations` for a decision on that object.
   */
  relations(query: {
    object: { type: string; id: string }
    subject: TupleSubject
  }): Promise<string[]>
  /**
   * Ancestors of an object through `parent` tuples (`doc:a#parent@folder:x`), nearest first,
   * for the Cedar entity slice (`resource in Deputy::Folder::"x"`).
   */
  ancestors(object: { type: string; id: string }): Promise<{ type: string; id: string }[]>
}

// ---------------------------------------------------------------------------------------------
// Decisions

export type DecisionOutcome = 'allow' | 'deny' | 'needs_approval'

/** A decision that explains itself. */
export interface PolicyDecision {
  readonly decision: DecisionOutcome
  /** The policies that determined it (Cedar's `reason`); empty for a default deny. */
  readonly policies: readonly string[]
  /** One sentence a person can read: who, what, and which policy decided (or that none permitted). */
  readonly explanation: string
  /** A deciding forbid's `@message`, for the caller (the tool error text). */
  readonly message?: string
  /** Policies that failed to evaluate; a failing forbid makes the decision a deny (fail closed). */
  readonly errors: readonly { readonly policyId: string; readonly message: string }[]
  /** The policy-set version the decision was made with. */
  readonly setVersion: number
}

/** A person asking, through an agent, to do something to something. */
export interface AuthorizationRequest {
  /** The person: Deputy user id (`sub` of Deputy's tokens). */
  readonly sub: string
  /** The agent (OAuth client id), when one acts; absent for the person themself. */
  readonly clientId?: string
  /** The Cedar action id: a declared tool's `<resource>#<tool>`, or `read`. */
  readonly action: string
  /** What it is done to: a tool (`Deputy::Tool`), a document (`Deputy::Document`), … */
  readonly resource: EntityRef
  /** The token's scopes. */
  readonly scopes?: readonly string[]
  /** Tool arguments (shaped to the action's declared arguments). */
  readonly arguments?: unknown
  /** The person's state (shaped to the action's declared state). */
  readonly state?: Readonly<Record<string, unknown>>
  /** Whether the person approved this call (the approvals flow sets it). */
  readonly approved?: boolean
  /** Relations the person holds on the resource; filled from tuples when left out. */
  readonly relations?: readonly string[]
  /**
   * RFC 8693 §4.1: the client ids of the token's `act` chain, the current actor first (empty
   * or absent when the token was not exchanged); policies see it as `context.chain`/`depth`.
   */
  readonly chain?: readonly string[]
  /** Audit: the request id that led here. */
  readonly requestId?: string
}

/** What the MCP kit asks about one tool call (see `@deputy/mcp`'s `cedarPolicy`). */
export interface ToolCallAuthorization {
  /** The MCP server's resource indicator. */
  readonly resource: string
  readonly tool: string
  readonly sub: string
  readonly clientId: string | undefined
  readonly scopes: readonly string[]
  readonly arguments: unknown
  readonly state: Readonly<Record<string, unknown>>
  readonly approved?: boolean
  /** The token's `act` chain, the current actor first (`@deputy/mcp` `identity.actors`). */
  readonly actors?: readonly string[]
}

/** One row of "what may agent X do for person Y". */
export interface SimulatedAction {
  /** The Cedar action id (`<resource>#<tool>`). */
  readonly action: string
  readonly resource: string | null
  /** `depends_on_arguments` when a policy looked at arguments the simulation cannot know. */
  readonly decision: DecisionOutcome | 'depends_on_arguments'
  readonly policies: readonly string[]
  readonly explanation: string
}

/** The policy decision point: Cedar over the stored policies, with entity slices from Deputy's data. */
export interface PolicyEngine {
  /** Decides and appends a `policy.decided` audit event naming the deciding policies. */
  authorize(request: AuthorizationRequest): Promise<PolicyDecision>
  /** The MCP kit's entry: a tool call as an authorization request on `Deputy::Tool`. */
  authorizeToolCall(request: ToolCallAuthorization): Promise<PolicyDecision>
  /** Like authorize, without the audit event (the `explain`/`test` surfaces). */
  explain(request: AuthorizationRequest): Promise<PolicyDecision>
  /** "What may agent X do for person Y": every declared action, decided with what is known. */
  simulate(query: { sub: string; clientId?: string }): Promise<SimulatedAction[]>
  /** Retrieval: the subset of `objects` the person may `read` through the agent (tuples + Cedar). */
  filterReadable(query: {
    sub: string
    clientId?: string
    type: string
    objects: readonly string[]
    relation?: string
  }): Promise<string[]>
  /** Reloads now if the policy-set version moved (otherwise every `refreshIntervalMs`). */
  refresh(): Promise<void>
  /** The version decisions are currently made with. */
  loadedVersion(): number
  /** Stops the refresh timer. */
  close(): void
}
