import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import { type Kysely, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * A declared action is a tool *of a server* (issue 9 §9). Until now `policy_actions` was keyed by
 * the tool's name alone and the Cedar action id was that name, so two MCP servers with a
 * `deleteFile` tool shared one action, the later declaration took the earlier one's place, and a
 * policy written for one server decided the other's calls.
 *
 * 1. `policy_actions` is rebuilt keyed by (resource, name), `resource` required; rows are kept.
 *    A row without a resource could not be a tool of any server (no tool call names one) and is
 *    dropped: servers declare their tools again on every start.
 * 2. The Cedar action id of a tool is now `<resource>#<name>`. Every current policy that names a
 *    declared tool by its old id (`Deputy::Action::"buyMcpShopItem"`) gets a new version naming
 *    the same tool by its new id. Until now a name had exactly one resource, the one whose
 *    declaration the schema held, so the rewrite is exact; policies keep their ids and history
 *    (an operator's edit of a seeded mcp.shop policy stays theirs, and is never installed over),
 *    and the new version is written by `system:0007-policy-actions-by-resource`. The text is
 *    changed only inside those action references, and the result is checked with Cedar against
 *    the intended policy; where that check fails, Cedar's own rendering of the intended policy
 *    is stored instead (comments are then lost, nothing else).
 * 3. The policy-set version is bumped when anything changed, so running processes reload.
 *
 * Self-contained on purpose (cedar-wasm, not Deputy's policy modules): a landed migration must do
 * the same thing whatever those modules become.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // PostgreSQL runs each migration in a transaction already; SQLite's migrator does not, and a
  // rebuilt table plus rewritten policies must land together or not at all.
  if (db.isTransaction) await upgrade(db)
  else await db.transaction().execute((trx) => upgrade(trx))
}

async function upgrade(db: Kysely<unknown>): Promise<void> {
  const rows = await sql<{
    name: string
    resource: string | null
    description: string | null
    arguments: string | null
    state: string | null
    updated_at: number | string
  }>`SELECT name, resource, description, arguments, state, updated_at FROM policy_actions`.execute(
    db,
  )

  await db.schema
    .createTable('policy_actions_by_resource')
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    // JSON Schema (object) or null.
    .addColumn('arguments', 'text')
    .addColumn('state', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('policy_actions_by_resource_pk', ['resource', 'name'])
    .execute()
  const kept = rows.rows.filter(
    (row): row is typeof row & { resource: string } => row.resource !== null,
  )
  for (const row of kept) {
    await sql`INSERT INTO policy_actions_by_resource (resource, name, description, arguments, state, updated_at) VALUES (${row.resource}, ${row.name}, ${row.description}, ${row.arguments}, ${row.state}, ${row.updated_at})`.execute(
      db,
    )
  }
  await db.schema.dropTable('policy_actions').execute()
  await sql`ALTER TABLE policy_actions_by_resource RENAME TO policy_actions`.execute(db)

  // The old action id (the tool's name) → the new one (`<resource>#<name>`).
  const renamed = new Map(kept.map((row) => [row.name, `${row.resource}#${row.name}`]))
  const current = await sql<{ policy_id: string; version: number; text: string | null }>`
    SELECT p.policy_id, p.version, p.text FROM policy_versions p
    WHERE p.version = (SELECT MAX(q.version) FROM policy_versions q WHERE q.policy_id = p.policy_id)
    ORDER BY p.policy_id`.execute(db)
  const rewritten: { policy_id: string; version: number; text: string }[] = []
  for (const row of current.rows) {
    if (row.text === null) continue
    const text = renameActions(row.text, renamed)
    if (text !== undefined) rewritten.push({ policy_id: row.policy_id, version: row.version, text })
  }
  if (kept.length === 0 && rows.rows.length === 0 && rewritten.length === 0) return

  const now = Date.now()
  await sql`INSERT INTO policy_set (id, version, updated_at) VALUES (1, 1, ${now})
    ON CONFLICT (id) DO UPDATE SET version = policy_set.version + 1, updated_at = ${now}`.execute(
    db,
  )
  const set = await sql<{
    version: number | string
  }>`SELECT version FROM policy_set WHERE id = 1`.execute(db)
  const setVersion = Number(set.rows[0]?.version)
  for (const row of rewritten) {
    await sql`INSERT INTO policy_versions (policy_id, version, set_version, text, created_at, created_by) VALUES (${row.policy_id}, ${Number(row.version) + 1}, ${setVersion}, ${row.text}, ${now}, ${'system:0007-policy-actions-by-resource'})`.execute(
      db,
    )
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Back to one row per name: where two servers declared a name, the last declared is kept, as
  // the old table did. Policies stay as they are (their new versions name the new ids).
  const rows = await sql<{
    name: string
    resource: string
    description: string | null
    arguments: string | null
    state: string | null
    updated_at: number | string
  }>`SELECT name, resource, description, arguments, state, updated_at FROM policy_actions ORDER BY updated_at, resource`.execute(
    db,
  )
  const byName = new Map(rows.rows.map((row) => [row.name, row]))
  await db.schema.dropTable('policy_actions').execute()
  await db.schema
    .createTable('policy_actions')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('resource', 'text')
    .addColumn('description', 'text')
    .addColumn('arguments', 'text')
    .addColumn('state', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  for (const row of byName.values()) {
    await sql`INSERT INTO policy_actions (name, resource, description, arguments, state, updated_at) VALUES (${row.name}, ${row.resource}, ${row.description}, ${row.arguments}, ${row.state}, ${row.updated_at})`.execute(
      db,
    )
  }
}

const ACTION_TYPE = 'Deputy::Action'

/**
 * `text` with every reference to an action in `renamed` (old id → new id) changed to the new id,
 * or undefined when it names none. Only the string of `Deputy::Action::"…"` changes, and Cedar
 * must parse the result to the policy intended (every such reference renamed, nothing else
 * touched); otherwise the intended policy as Cedar prints it is returned.
 */
export function renameActions(
  text: string,
  renamed: ReadonlyMap<string, string>,
): string | undefined {
  const parsed = cedar.policyToJson(text)
  if (parsed.type !== 'success') return undefined
  let changed = false
  const intended = mapActions(parsed.json, (id) => {
    const to = renamed.get(id)
    if (to === undefined) return id
    changed = true
    return to
  })
  if (!changed) return undefined
  const edited = text.replace(
    /(Deputy\s*::\s*Action\s*::\s*)"([^"\\]*)"/g,
    (whole, prefix: string, id: string) => {
      const to = renamed.get(id)
      return to === undefined ? whole : `${prefix}${JSON.stringify(to)}`
    },
  )
  const check = cedar.policyToJson(edited)
  if (check.type === 'success' && sameJson(check.json, intended)) return edited
  const printed = cedar.policyToText(intended as cedar.PolicyJson)
  return printed.type === 'success' ? printed.text : undefined
}

/** A copy of a policy's JSON form with every `Deputy::Action` entity id passed through `to`. */
function mapActions(node: unknown, to: (id: string) => string): unknown {
  if (Array.isArray(node)) return node.map((item) => mapActions(item, to))
  if (typeof node !== 'object' || node === null) return node
  const record = node as Record<string, unknown>
  if (
    record.type === ACTION_TYPE &&
    typeof record.id === 'string' &&
    Object.keys(record).length === 2
  )
    return { type: ACTION_TYPE, id: to(record.id) }
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [key, mapActions(value, to)]),
  )
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b))
}

function sorted(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(sorted)
  if (typeof node !== 'object' || node === null) return node
  return Object.fromEntries(
    Object.entries(node as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => [key, sorted(value)]),
  )
}
