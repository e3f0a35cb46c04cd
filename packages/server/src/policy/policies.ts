import type { Kysely, Selectable } from 'kysely'
import { z } from 'zod'
import type { AuditLog } from '../audit/types.js'
import { parseInput } from '../identity/users.js'
import { canonicalJson } from '../lib/canonical-json.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import { ResourceUriSchema } from '../oauth/resources.js'
import type { Store } from '../store/db.js'
import { LOCKS, runExclusive } from '../store/exclusive.js'
import type { Database, PolicyActionsTable, PolicyVersionsTable } from '../store/schema.js'
import {
  checkSchema,
  lineAndColumn,
  type PolicyJson,
  type PolicyStatement,
  policyToJson,
  splitPolicyText,
  validatePolicies,
} from './cedar.js'
import {
  actionIdOf,
  asCedarSchema,
  buildCedarSchema,
  DEPUTY_ACTIONS,
  declared as declaredAction,
  toolActionId,
} from './schema.js'
import type {
  ActionDeclaration,
  ParsedPolicy,
  Policies,
  PolicyProblem,
  PolicyVersion,
  StoredPolicy,
} from './types.js'

export interface PoliciesDeps {
  store: Store
  clock: Clock
  audit: AuditLog
  /**
   * Called after every committed change of the policy set, before the write resolves: Deputy
   * points it at the local engine's refresh, so a decision made right after a write in this
   * process already uses it (other processes catch up on their next poll).
   */
  onChange?: () => Promise<void>
}

/** A policy id: `@id("…")` or given on write. */
export const POLICY_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** A declared tool's name (its Cedar action id is `<resource>#<name>`). */
export const ACTION_NAME = /^[A-Za-z0-9_.:-]{1,128}$/

/** Parsed policy texts kept, so `list()` on every reload does not re-parse unchanged policies. */
const MAX_DESCRIBED = 10_000

type VersionRow = Selectable<PolicyVersionsTable>
type ActionRow = Selectable<PolicyActionsTable>

/** A JSON Schema of an object: `inputSchema` of an MCP tool, or the shape of a person's state. */
const ObjectJsonSchema = z
  .record(z.string(), z.unknown())
  .refine((schema) => schema.type === 'object', {
    message: 'must be an object JSON Schema ("type": "object")',
  })

const DeclarationSchema = z.strictObject({
  name: z.string().regex(ACTION_NAME, { message: 'must be 1 to 128 of A-Z a-z 0-9 _ . : -' }),
  // Every declared action is a tool of a server: the server is half of its identity (issue 9
  // §9), and without a fragment `<resource>#<name>` names exactly one tool.
  resource: ResourceUriSchema.pipe(z.string().max(2048)),
  description: z.string().max(1000).optional(),
  arguments: ObjectJsonSchema.optional(),
  state: ObjectJsonSchema.optional(),
})

const DeclarationsSchema = z
  .array(DeclarationSchema)
  .refine((list) => new Set(list.map(actionIdOf)).size === list.length, {
    message: 'names the same tool of the same server twice',
  })

/** A statement of a text being written, with what the store records about it. */
interface Statement extends ParsedPolicy {
  readonly at: PolicyStatement
}

/** The versioned policy store on Kysely (SQLite and PostgreSQL). */
export function createPolicies(deps: PoliciesDeps): Policies {
  const { store, clock, audit } = deps
  const described = new Map<string, Omit<ParsedPolicy, 'id' | 'text'>>()

  /** Effect, annotations and the actions a statement's scope names; cached by text. */
  function describe(text: string): Omit<ParsedPolicy, 'id' | 'text'> {
    let found = described.get(text)
    if (!found) {
      found = fromJson(policyToJson(text))
      if (described.size >= MAX_DESCRIBED) described.clear()
      described.set(text, found)
    }
    return found
  }

  /** Splits a text and gives each statement its id; problems are located in `text`. */
  function parse(
    text: string,
    options: { id?: string } | undefined,
  ): { statements: Statement[]; problems: PolicyProblem[] } {
    const split = splitPolicyText(text)
    if (!split.ok) return { statements: [], problems: [...split.problems] }
    const problems: PolicyProblem[] = []
    const at = (offset: number) => lineAndColumn(text, offset)
    const given = options?.id
    if (split.statements.length === 0) {
      return {
        statements: [],
        problems: [
          { ...at(0), message: 'the text holds no policy (`permit(…);` or `forbid(…);`)' },
        ],
      }
    }
    if (given !== undefined && split.statements.length > 1) {
      problems.push({
        ...at(split.statements[1]?.offset ?? 0),
        message: `an id was given for one policy, but the text holds ${split.statements.length}`,
        help: 'give each statement its own @id("…") annotation',
      })
    }
    const statements: Statement[] = []
    const seen = new Map<string, number>()
    for (const statement of split.statements) {
      const json = policyToJson(statement.text)
      const annotated = json.annotations?.id
      const idAt = at(statement.offset + Math.max(0, statement.text.search(/@id\b/)))
      let id: string | undefined
      if (annotated === undefined) {
        id = split.statements.length === 1 ? given : undefined
        if (id === undefined) {
          problems.push({
            ...at(statement.offset),
            message: 'the policy has no id',
            help: 'add an @id("…") annotation before `permit` or `forbid`',
          })
          continue
        }
      } else if (annotated === null || annotated === '') {
        problems.push({ ...idAt, message: '@id needs a value, e.g. @id("ban-on-weekends")' })
        continue
      } else {
        id = annotated
        if (given !== undefined && split.statements.length === 1 && given !== id) {
          problems.push({
            ...idAt,
            message: `the policy's @id("${id}") differs from the id given (${given})`,
          })
          continue
        }
      }
      if (!POLICY_ID.test(id)) {
        problems.push({
          ...(annotated === undefined ? at(0) : idAt),
          message: `policy id "${id.slice(0, 140)}" is not valid`,
          help: 'use 1 to 128 of A-Z a-z 0-9 . _ : -',
        })
        continue
      }
      const first = seen.get(id)
      if (first !== undefined) {
        problems.push({
          policyId: id,
          ...idAt,
          message: `@id("${id}") is used twice in this text`,
          help: `the first is on line ${at(first).line}`,
        })
        continue
      }
      seen.set(id, statement.offset)
      statements.push({ id, text: statement.text, at: statement, ...fromJson(json) })
    }
    return { statements, problems }
  }

  /** Strict validation of the statements against `schema`, located in the whole text. */
  function check(
    declarations: readonly ActionDeclaration[],
    text: string,
    statements: Statement[],
  ): PolicyProblem[] {
    const byId = new Map(statements.map((s) => [s.id, s]))
    return validatePolicies(
      asCedarSchema(buildCedarSchema(declarations)),
      Object.fromEntries(statements.map((s) => [s.id, s.text])),
    ).map((problem) => {
      const statement = byId.get(problem.policyId)
      const help = actionHint(problem.message, declarations) ?? problem.help
      return {
        policyId: problem.policyId,
        ...lineAndColumn(text, (statement?.at.offset ?? 0) + problem.offset),
        message: problem.message,
        ...(help === undefined ? {} : { help }),
      }
    })
  }

  async function declared(db: Kysely<Database>): Promise<ActionRow[]> {
    return db.selectFrom('policy_actions').selectAll().orderBy('resource').orderBy('name').execute()
  }

  /** The newest version of each policy (removed ones included, with null text). */
  async function newest(db: Kysely<Database>, ids?: readonly string[]): Promise<VersionRow[]> {
    if (ids !== undefined && ids.length === 0) return []
    let query = db
      .selectFrom('policy_versions as p')
      .selectAll()
      .where('p.version', '=', (eb) =>
        eb
          .selectFrom('policy_versions as q')
          .select((q) => q.fn.max('q.version').as('latest'))
          .whereRef('q.policy_id', '=', 'p.policy_id'),
      )
    if (ids !== undefined) query = query.where('p.policy_id', 'in', [...ids])
    return query.orderBy('p.policy_id').execute()
  }

  /** Bumps the policy-set version, creating its one row on the first write (an upsert: no race). */
  async function bump(db: Kysely<Database>, now: number): Promise<number> {
    const row = await db
      .insertInto('policy_set')
      .values({ id: 1, version: 1, updated_at: now })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet((eb) => ({
          version: eb('policy_set.version', '+', 1),
          updated_at: now,
        })),
      )
      .returning('version')
      .executeTakeFirstOrThrow()
    return Number(row.version)
  }

  function stored(row: VersionRow & { text: string }): StoredPolicy {
    return {
      id: row.policy_id,
      version: row.version,
      setVersion: row.set_version,
      text: row.text,
      ...describe(row.text),
      createdAt: new Date(Number(row.created_at)).toISOString(),
      createdBy: row.created_by,
    }
  }

  const policies: Policies = {
    async validate(text, options) {
      const { statements, problems } = parse(text, options)
      if (problems.length > 0) return { ok: false, problems: sorted(problems) }
      const invalid = check(toDeclarations(await declared(store.db)), text, statements)
      if (invalid.length > 0) return { ok: false, problems: sorted(invalid) }
      return { ok: true, policies: statements.map(({ at: _, ...policy }) => policy) }
    },

    async put(text, actor, options) {
      if (typeof text !== 'string')
        throw new DeputyError('ERR_INVALID_INPUT', 'the policy text must be a string')
      const parsed = parse(text, options)
      refuseIfAny(parsed.problems)
      const now = clock.now().getTime()
      const createdBy = `${actor.type}:${actor.id}`
      const outcome = await runExclusive(store, LOCKS.policySet, async (db) => {
        // The schema is read under the lock: a concurrent declaration cannot slip in between.
        refuseIfAny(check(toDeclarations(await declared(db)), text, parsed.statements))
        const current = new Map(
          (
            await newest(
              db,
              parsed.statements.map((s) => s.id),
            )
          ).map((row) => [row.policy_id, row]),
        )
        const changed = parsed.statements.filter((s) => current.get(s.id)?.text !== s.text)
        if (changed.length === 0) return { current, written: [] as VersionRow[], setVersion: 0 }
        const setVersion = await bump(db, now)
        const written = changed.map((s) => ({
          policy_id: s.id,
          version: (current.get(s.id)?.version ?? 0) + 1,
          set_version: setVersion,
          text: s.text,
          created_at: now,
          created_by: createdBy,
        }))
        await db.insertInto('policy_versions').values(written).execute()
        return { current, written, setVersion }
      })
      if (outcome.written.length > 0) {
        await deps.onChange?.()
        const ids = outcome.written.map((row) => row.policy_id)
        await audit.append({
          type: 'policy.written',
          actor,
          target: ids.length === 1 ? { type: 'policy', id: ids[0] as string } : null,
          data: {
            ids,
            versions: outcome.written.map((row) => row.version),
            set_version: outcome.setVersion,
          },
        })
      }
      const written = new Map(outcome.written.map((row) => [row.policy_id, row]))
      return parsed.statements.map((s) => {
        const row = written.get(s.id) ?? outcome.current.get(s.id)
        return stored(row as VersionRow & { text: string })
      })
    },

    async remove(id, actor) {
      const now = clock.now().getTime()
      const removed = await runExclusive(store, LOCKS.policySet, async (db) => {
        const [current] = typeof id === 'string' && POLICY_ID.test(id) ? await newest(db, [id]) : []
        if (!current || current.text === null)
          throw new DeputyError('ERR_NOT_FOUND', `no policy with id ${String(id).slice(0, 140)}`)
        const setVersion = await bump(db, now)
        const version = current.version + 1
        await db
          .insertInto('policy_versions')
          .values({
            policy_id: id,
            version,
            set_version: setVersion,
            text: null,
            created_at: now,
            created_by: `${actor.type}:${actor.id}`,
          })
          .execute()
        return { version, setVersion }
      })
      await deps.onChange?.()
      await audit.append({
        type: 'policy.removed',
        actor,
        target: { type: 'policy', id },
        data: { id, version: removed.version, set_version: removed.setVersion },
      })
    },

    async list() {
      const rows = await newest(store.db)
      return rows.filter(hasText).map(stored)
    },

    async latestVersions() {
      return (await newest(store.db)).map(versionOf)
    },

    async get(id) {
      if (typeof id !== 'string' || !POLICY_ID.test(id)) return undefined
      const [row] = await newest(store.db, [id])
      return row && hasText(row) ? stored(row) : undefined
    },

    async history(id) {
      if (typeof id !== 'string' || !POLICY_ID.test(id)) return []
      const rows = await store.db
        .selectFrom('policy_versions')
        .selectAll()
        .where('policy_id', '=', id)
        .orderBy('version')
        .execute()
      return rows.map(versionOf)
    },

    async setVersion() {
      const row = await store.db
        .selectFrom('policy_set')
        .select('version')
        .where('id', '=', 1)
        .executeTakeFirst()
      return row ? Number(row.version) : 0
    },

    async actions() {
      return [...DEPUTY_ACTIONS, ...toDeclarations(await declared(store.db)).map(declaredAction)]
    },

    async declareActions(actions, actor) {
      const declarations = parseInput(DeclarationsSchema, actions, 'actions')
      const now = clock.now().getTime()
      // Keyed by server and tool: another server's tool of the same name is another action,
      // and declaring it never replaces this one (issue 9 §9).
      const key = (row: ActionRow) => toolActionId(row.resource, row.name)
      const outcome = await runExclusive(store, LOCKS.policySet, async (db) => {
        const existing = new Map((await declared(db)).map((row) => [key(row), row]))
        const before = buildCedarSchema(toDeclarations([...existing.values()]))
        const changed = declarations
          .map((declaration) => toRow(declaration, now))
          .filter((row) => {
            const was = existing.get(key(row))
            return (
              !was ||
              was.description !== row.description ||
              was.arguments !== row.arguments ||
              was.state !== row.state
            )
          })
        if (changed.length === 0) return undefined
        for (const row of changed) existing.set(key(row), row)
        const schema = buildCedarSchema(toDeclarations([...existing.values()]))
        const unusable = checkSchema(asCedarSchema(schema))
        if (unusable)
          throw new DeputyError(
            'ERR_INVALID_INPUT',
            `the declared actions make no valid Cedar schema: ${unusable}`,
          )
        // Every stored policy that validated must still validate: a declaration that drops an
        // argument a policy reads would otherwise leave that policy failing at decision time
        // instead of now. One that did not validate before (written past the store, or naming
        // an action no server declares) cannot hold every other server's declarations hostage.
        const current = (await newest(db)).filter(hasText)
        const texts = new Map(current.map((row) => [row.policy_id, row.text]))
        const all = Object.fromEntries(texts)
        const failedBefore = new Set(
          validatePolicies(asCedarSchema(before), all).map((problem) => problem.policyId),
        )
        const broken = validatePolicies(asCedarSchema(schema), all)
          .filter((problem) => !failedBefore.has(problem.policyId))
          .map((problem) => ({
            policyId: problem.policyId,
            ...lineAndColumn(texts.get(problem.policyId) ?? '', problem.offset),
            message: problem.message,
            ...(problem.help === undefined ? {} : { help: problem.help }),
          }))
        if (broken.length > 0) {
          const [first] = sorted(broken)
          throw new DeputyError(
            'ERR_POLICY_INVALID',
            `these action declarations would break policy ${first?.policyId}: ${describeProblem(first as PolicyProblem)}`,
            { problems: sorted(broken) },
          )
        }
        for (const row of changed) {
          await db
            .insertInto('policy_actions')
            .values(row)
            .onConflict((oc) =>
              oc.columns(['resource', 'name']).doUpdateSet({
                description: row.description,
                arguments: row.arguments,
                state: row.state,
                updated_at: row.updated_at,
              }),
            )
            .execute()
        }
        return { changed, setVersion: await bump(db, now) }
      })
      if (!outcome) return
      await deps.onChange?.()
      const resources = new Set(outcome.changed.map((row) => row.resource))
      const [resource] = [...resources]
      await audit.append({
        type: 'policy.actions-declared',
        actor,
        target: resources.size === 1 && resource ? { type: 'resource', id: resource } : null,
        data: { actions: outcome.changed.map(key), set_version: outcome.setVersion },
      })
    },

    async schema() {
      return buildCedarSchema(toDeclarations(await declared(store.db)))
    },
  }
  return policies
}

/**
 * For an action named by a tool's bare name (`Deputy::Action::"buyMcpShopItem"`, as before
 * issue 9 §9), the ids it may mean: Cedar's own guess is the nearest spelling, often `read`.
 */
function actionHint(
  message: string,
  declarations: readonly ActionDeclaration[],
): string | undefined {
  const named = /^unrecognized action `Deputy::Action::"([^"]*)"`/.exec(message)?.[1]
  if (named === undefined) return undefined
  const ids = declarations
    .filter((d) => d.name === named && d.resource !== null)
    .map((d) => `\`Deputy::Action::"${actionIdOf(d)}"\``)
  if (ids.length === 0) return undefined
  return `a tool's action is named by its server too: ${ids.join(' or ')}`
}

/** Throws `ERR_POLICY_INVALID` naming the first problem, when there is any. */
function refuseIfAny(problems: readonly PolicyProblem[]): void {
  if (problems.length === 0) return
  const all = sorted(problems)
  const first = all[0] as PolicyProblem
  const more = all.length > 1 ? ` (and ${all.length - 1} more)` : ''
  throw new DeputyError(
    'ERR_POLICY_INVALID',
    `${first.policyId ? `policy ${first.policyId}, ` : ''}${describeProblem(first)}${more}`,
    { problems: all },
  )
}

/** `line 3, column 12: <message> (<help>)`. */
function describeProblem(problem: PolicyProblem): string {
  const help = problem.help ? ` (${problem.help})` : ''
  return `line ${problem.line}, column ${problem.column}: ${problem.message}${help}`
}

/** In the order they appear in the text. */
function sorted(problems: readonly PolicyProblem[]): PolicyProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column)
}

function versionOf(row: VersionRow): PolicyVersion {
  return {
    id: row.policy_id,
    version: row.version,
    setVersion: row.set_version,
    text: row.text,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    createdBy: row.created_by,
  }
}

function hasText(row: VersionRow): row is VersionRow & { text: string } {
  return row.text !== null
}

/** What the store derives from a statement's JSON form. */
function fromJson(json: PolicyJson): Omit<ParsedPolicy, 'id' | 'text'> {
  const annotation = (name: string) => {
    const value = json.annotations?.[name]
    return typeof value === 'string' ? value : null
  }
  const action = json.action
  let actions: string[] | null = null
  if (action.op === '==' && 'entity' in action) actions = [entityId(action.entity)]
  else if (action.op === 'in')
    actions = 'entities' in action ? action.entities.map(entityId) : [entityId(action.entity)]
  return {
    effect: json.effect,
    description: annotation('description'),
    message: annotation('message'),
    actions,
  }
}

function entityId(uid: { __entity: { id: string } } | { id: string }): string {
  return '__entity' in uid ? uid.__entity.id : uid.id
}

function toRow(declaration: z.infer<typeof DeclarationSchema>, now: number): ActionRow {
  return {
    name: declaration.name,
    resource: declaration.resource,
    description: declaration.description ?? null,
    // Canonical JSON: the same schema with its keys in another order is no change.
    arguments: declaration.arguments === undefined ? null : canonicalJson(declaration.arguments),
    state: declaration.state === undefined ? null : canonicalJson(declaration.state),
    updated_at: now,
  }
}

function toDeclarations(rows: readonly ActionRow[]): ActionDeclaration[] {
  return rows.map((row) => ({
    name: row.name,
    resource: row.resource,
    ...(row.description === null ? {} : { description: row.description }),
    ...(row.arguments === null ? {} : { arguments: JSON.parse(row.arguments) }),
    ...(row.state === null ? {} : { state: JSON.parse(row.state) }),
  }))
}
