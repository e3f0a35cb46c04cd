import { type Expression, type SqlBool, sql } from 'kysely'
import type { Actor, AuditLog } from '../audit/types.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Store } from '../store/db.js'
import type { RelationshipTuplesTable } from '../store/schema.js'
import {
  formatSubject,
  formatTuple,
  objectProblem,
  relationProblem,
  subjectProblem,
  type TupleObject,
  tupleProblem,
  typeProblem,
  WILDCARD,
} from './tuple-syntax.js'
import type { Relationships, RelationshipTuple, TupleSubject } from './types.js'

export interface RelationshipsDeps {
  store: Store
  clock: Clock
  audit: AuditLog
}

/** How many levels of nested usersets (and of `parent` folders) are followed. */
export const MAX_DEPTH = 16
/** Most tuples one write or delete may carry. */
export const MAX_TUPLES_PER_CALL = 1000
/** Candidate ids per `filter` query: a bounded number of queries for any number of candidates. */
const CANDIDATES_PER_QUERY = 500
/** Subjects per query (an expansion is rarely this large; beyond it the query is split). */
const SUBJECTS_PER_QUERY = 2000
/** Tuples per INSERT / DELETE statement inside a write's transaction. */
const ROWS_PER_STATEMENT = 100
const DEFAULT_READ_LIMIT = 1000
const MAX_READ_LIMIT = 10_000
/** Tuples named in an audit event; the count says how many there were. */
const AUDITED_TUPLES = 5

/**
 * Group membership (`group:eng#member`) is always part of a person's expansion: the Cedar model
 * makes every group a person belongs to a parent of the Person entity (`principal in
 * Deputy::Group::"eng"`), whether or not a tuple names that group's members as a subject.
 */
const MEMBERSHIP = { type: 'group', relation: 'member' } as const

/**
 * The relations usersets use in subjects (`member` of `group:eng#member`): a loose index scan,
 * one seek per distinct relation on `relationship_tuples_by_subject_relation` (partial, on
 * `subject_relation <> ''`, which every step repeats so both dialects may use that index).
 */
const USERSET_RELATIONS = sql<{ relation: string }>`
  with recursive userset_relations(relation) as (
    select min(subject_relation) from relationship_tuples where subject_relation <> ''
    union all
    select (
      select min(subject_relation) from relationship_tuples
      where subject_relation <> '' and subject_relation > userset_relations.relation
    )
    from userset_relations where userset_relations.relation is not null
  )
  select relation from userset_relations where relation is not null`

/** Relationship tuples on Kysely (SQLite and PostgreSQL), with userset expansion. */
export function createRelationships(deps: RelationshipsDeps): Relationships {
  const { store, clock, audit } = deps
  const db = store.db

  /**
   * The subject, `type:*` for a plain subject, and every userset it belongs to, level by level:
   * one query per level (per SUBJECTS_PER_QUERY usersets), cycles stopped by the `seen` set.
   * A userset is followed only when some tuple names it as a subject (otherwise it can match
   * nothing), or when it is a group membership (the Cedar model needs those), and only tuples
   * whose relation some userset uses are read at all: the documents shared with a person's
   * groups stay on the index, whatever their number. One more query first finds those
   * relations (USERSET_RELATIONS); a relation first used while an expansion runs is seen by the
   * next one.
   */
  async function expand(subject: TupleSubject): Promise<TupleSubject[]> {
    const seen = new Set<string>()
    const add = (s: TupleSubject, into: TupleSubject[]) => {
      const key = formatSubject(s)
      if (seen.has(key)) return
      seen.add(key)
      into.push(s)
    }
    let frontier: TupleSubject[] = []
    add(normalizeSubject(subject), frontier)
    if (subject.relation === undefined && subject.id !== WILDCARD)
      add({ type: subject.type, id: WILDCARD }, frontier)
    const expansion = [...frontier]
    const usersetRelations = (await USERSET_RELATIONS.execute(db)).rows.map((r) => r.relation)
    const followed = [...new Set([MEMBERSHIP.relation, ...usersetRelations])]
    for (let depth = 0; depth < MAX_DEPTH && frontier.length > 0; depth++) {
      const next: TupleSubject[] = []
      for (const part of chunks(frontier, SUBJECTS_PER_QUERY)) {
        const rows = await db
          .selectFrom('relationship_tuples as t')
          .select(['t.object_type', 't.object_id', 't.relation'])
          .where(subjectIn(part))
          .where('t.relation', 'in', followed)
          .where((eb) =>
            eb.or([
              eb.and([
                eb('t.object_type', '=', MEMBERSHIP.type),
                eb('t.relation', '=', MEMBERSHIP.relation),
              ]),
              eb.exists(
                eb
                  .selectFrom('relationship_tuples as u')
                  .select(sql`1`.as('one'))
                  .whereRef('u.subject_type', '=', 't.object_type')
                  .whereRef('u.subject_id', '=', 't.object_id')
                  .whereRef('u.subject_relation', '=', 't.relation'),
              ),
            ]),
          )
          .execute()
        for (const row of rows)
          add({ type: row.object_type, id: row.object_id, relation: row.relation }, next)
      }
      // Same order on every dialect and every run: by level, then by name.
      frontier = next.sort((a, b) => compare(formatSubject(a), formatSubject(b)))
      expansion.push(...frontier)
    }
    return expansion
  }

  /**
   * Object ids of `type` that `subjects` hold `relation` on: one walk of the subject index per
   * subject. SQLite, without statistics, would rather scan every tuple of the type through the
   * primary key (`object_type = ?` is its first column); a unary `+` keeps that term off the
   * index, its documented way to steer the planner. PostgreSQL plans from statistics.
   */
  async function objectsHeldBy(
    subjects: readonly TupleSubject[],
    relation: string,
    type: string,
  ): Promise<Set<string>> {
    const found = new Set<string>()
    const objectType = store.dialect === 'sqlite' ? sql`+object_type` : sql`object_type`
    for (const part of chunks(subjects, SUBJECTS_PER_QUERY)) {
      // No DISTINCT: the set removes repeats for less than SQL's temporary b-tree costs.
      const rows = await db
        .selectFrom('relationship_tuples')
        .select('object_id')
        .where(sql<SqlBool>`${objectType} = ${type}`)
        .where('relation', '=', relation)
        .where(subjectIn(part))
        .execute()
      for (const row of rows) found.add(row.object_id)
    }
    return found
  }

  /** The ids among `objects` that `subjects` hold `relation` on: primary-key lookups by id. */
  async function objectsAmong(
    subjects: readonly TupleSubject[],
    relation: string,
    type: string,
    objects: readonly string[],
  ): Promise<Set<string>> {
    const found = new Set<string>()
    for (const candidates of chunks(objects, CANDIDATES_PER_QUERY)) {
      for (const part of chunks(subjects, SUBJECTS_PER_QUERY)) {
        const rows = await db
          .selectFrom('relationship_tuples')
          .select('object_id')
          .where('object_type', '=', type)
          .where('object_id', 'in', candidates)
          .where('relation', '=', relation)
          .where(subjectIn(part))
          .execute()
        for (const row of rows) found.add(row.object_id)
      }
    }
    return found
  }

  async function audited(
    type: 'relationships.written' | 'relationships.deleted',
    actor: Actor,
    tuples: readonly RelationshipTuple[],
    counts: Record<string, number>,
  ): Promise<void> {
    await audit.append({
      type,
      actor,
      target: null,
      data: {
        ...counts,
        requested: tuples.length,
        tuples: tuples.slice(0, AUDITED_TUPLES).map(formatTuple),
      },
    })
  }

  return {
    async write(tuples, actor) {
      const unique = validTuples(tuples)
      if (unique.length === 0) return { written: 0 }
      const now = clock.now().getTime()
      const written = await db.transaction().execute(async (trx) => {
        let count = 0
        for (const part of chunks(unique, ROWS_PER_STATEMENT)) {
          const result = await trx
            .insertInto('relationship_tuples')
            .values(part.map((t) => ({ ...toRow(t), created_at: now })))
            // Idempotent: an existing tuple is kept as it is (its created_at too).
            .onConflict((oc) => oc.columns(KEY_COLUMNS).doNothing())
            .executeTakeFirst()
          count += Number(result.numInsertedOrUpdatedRows ?? 0)
        }
        return count
      })
      if (written > 0) await audited('relationships.written', actor, unique, { written })
      return { written }
    },

    async delete(tuples, actor) {
      const unique = validTuples(tuples)
      if (unique.length === 0) return { deleted: 0 }
      const deleted = await db.transaction().execute(async (trx) => {
        let count = 0
        for (const part of chunks(unique, ROWS_PER_STATEMENT)) {
          const result = await trx
            .deleteFrom('relationship_tuples')
            .where((eb) => eb.or(part.map((t) => eb.and(toRow(t)))))
            .executeTakeFirst()
          count += Number(result.numDeletedRows)
        }
        return count
      })
      if (deleted > 0) await audited('relationships.deleted', actor, unique, { deleted })
      return { deleted }
    },

    async read(filter, limit = DEFAULT_READ_LIMIT) {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT)
        invalid(`limit must be an integer from 1 to ${MAX_READ_LIMIT}`)
      let query = db.selectFrom('relationship_tuples').selectAll()
      if (filter.object) {
        invalidIf(typeProblem(filter.object.type), 'object ')
        query = query.where('object_type', '=', filter.object.type)
        if (filter.object.id !== undefined) {
          invalidIf(objectProblem(filter.object))
          query = query.where('object_id', '=', filter.object.id)
        }
      }
      if (filter.relation !== undefined) {
        invalidIf(relationProblem(filter.relation))
        query = query.where('relation', '=', filter.relation)
      }
      if (filter.subject) {
        invalidIf(subjectProblem(filter.subject))
        const { subject_type, subject_id, subject_relation } = subjectRow(filter.subject)
        query = query
          .where('subject_type', '=', subject_type)
          .where('subject_id', '=', subject_id)
          .where('subject_relation', '=', subject_relation)
      }
      if (filter.after) {
        invalidIf(tupleProblem(filter.after), 'after: ')
        // Keyset paging on the primary key, in the order below: a row value comparison, which
        // both dialects compare column by column with the same collation as their ORDER BY.
        const key = toRow(filter.after)
        const columns = sql.join(KEY_COLUMNS.map((column) => sql.ref(column)))
        const values = sql.join(KEY_COLUMNS.map((column) => key[column]))
        query = query.where(sql<SqlBool>`(${columns}) > (${values})`)
      }
      const rows = await query
        .orderBy('object_type')
        .orderBy('object_id')
        .orderBy('relation')
        .orderBy('subject_type')
        .orderBy('subject_id')
        .orderBy('subject_relation')
        .limit(limit)
        .execute()
      return rows.map(fromRow)
    },

    async check(query) {
      invalidIf(objectProblem(query.object) ?? relationProblem(query.relation))
      const subjects = await expand(validSubject(query.subject))
      for (const part of chunks(subjects, SUBJECTS_PER_QUERY)) {
        const row = await db
          .selectFrom('relationship_tuples')
          .select('relation')
          .where('object_type', '=', query.object.type)
          .where('object_id', '=', query.object.id)
          .where('relation', '=', query.relation)
          .where(subjectIn(part))
          .limit(1)
          .executeTakeFirst()
        if (row) return true
      }
      return false
    },

    async listObjects(query) {
      invalidIf(typeProblem(query.type) ?? relationProblem(query.relation))
      const subjects = await expand(validSubject(query.subject))
      // Sorted here, not in SQL, so both dialects answer in the same order whatever the collation.
      return [...(await objectsHeldBy(subjects, query.relation, query.type))].sort()
    },

    async filter(query) {
      invalidIf(typeProblem(query.type) ?? relationProblem(query.relation))
      // Ids that could never name an object are simply not permitted; refusing the whole batch
      // for one odd candidate would fail a retrieval for nothing.
      const candidates = [...new Set(query.objects)].filter(
        (id) => typeof id === 'string' && objectProblem({ type: query.type, id }) === undefined,
      )
      if (candidates.length === 0) return []
      const subjects = await expand(validSubject(query.subject))
      const permitted = await objectsAmong(subjects, query.relation, query.type, candidates)
      return candidates.filter((id) => permitted.has(id))
    },

    async expandSubject(subject) {
      return expand(validSubject(subject))
    },

    async relations(query) {
      invalidIf(objectProblem(query.object))
      const subjects = await expand(validSubject(query.subject))
      const relations = new Set<string>()
      for (const part of chunks(subjects, SUBJECTS_PER_QUERY)) {
        const rows = await db
          .selectFrom('relationship_tuples')
          .select('relation')
          .distinct()
          .where('object_type', '=', query.object.type)
          .where('object_id', '=', query.object.id)
          .where(subjectIn(part))
          .execute()
        for (const row of rows) relations.add(row.relation)
      }
      return [...relations].sort()
    },

    async ancestors(object) {
      invalidIf(objectProblem(object))
      const seen = new Set<string>([`${object.type}:${object.id}`])
      const ancestors: TupleObject[] = []
      let frontier: TupleObject[] = [{ type: object.type, id: object.id }]
      for (let depth = 0; depth < MAX_DEPTH && frontier.length > 0; depth++) {
        const next: TupleObject[] = []
        for (const part of chunks(frontier, SUBJECTS_PER_QUERY)) {
          const rows = await db
            .selectFrom('relationship_tuples')
            .select(['object_type', 'object_id', 'subject_type', 'subject_id'])
            .where('relation', '=', 'parent')
            .where('subject_relation', '=', '')
            .where((eb) =>
              eb.or(
                groupBy(part, (o) => o.type).map(([type, members]) =>
                  eb.and([
                    eb('object_type', '=', type),
                    eb(
                      'object_id',
                      'in',
                      members.map((o) => o.id),
                    ),
                  ]),
                ),
              ),
            )
            .execute()
          // Nearest first: parents of earlier objects before those of later ones, then by name.
          const position = new Map(part.map((o, i) => [`${o.type}:${o.id}`, i]))
          rows.sort(
            (a, b) =>
              (position.get(`${a.object_type}:${a.object_id}`) ?? 0) -
                (position.get(`${b.object_type}:${b.object_id}`) ?? 0) ||
              compare(a.subject_type, b.subject_type) ||
              compare(a.subject_id, b.subject_id),
          )
          for (const row of rows) {
            const key = `${row.subject_type}:${row.subject_id}`
            if (seen.has(key)) continue
            seen.add(key)
            next.push({ type: row.subject_type, id: row.subject_id })
          }
        }
        ancestors.push(...next)
        frontier = next
      }
      return ancestors
    },
  }
}

/** The primary key: a tuple is these six columns. */
const KEY_COLUMNS = [
  'object_type',
  'object_id',
  'relation',
  'subject_type',
  'subject_id',
  'subject_relation',
] as const

type KeyRow = Omit<RelationshipTuplesTable, 'created_at'>

function subjectRow(subject: TupleSubject) {
  return {
    subject_type: subject.type,
    subject_id: subject.id,
    // '' for a plain subject, so the primary key holds on every dialect.
    subject_relation: subject.relation ?? '',
  }
}

function toRow(tuple: RelationshipTuple): KeyRow {
  return {
    object_type: tuple.object.type,
    object_id: tuple.object.id,
    relation: tuple.relation,
    ...subjectRow(tuple.subject),
  }
}

function fromRow(row: KeyRow): RelationshipTuple {
  return {
    object: { type: row.object_type, id: row.object_id },
    relation: row.relation,
    subject: normalizeSubject({
      type: row.subject_type,
      id: row.subject_id,
      relation: row.subject_relation === '' ? undefined : row.subject_relation,
    }),
  }
}

/** A subject without an `undefined` relation key, so results compare and print cleanly. */
function normalizeSubject(subject: TupleSubject): TupleSubject {
  return subject.relation === undefined
    ? { type: subject.type, id: subject.id }
    : { type: subject.type, id: subject.id, relation: subject.relation }
}

/**
 * `(subject_type, subject_id, subject_relation)` is one of `subjects`, as an OR of
 * `type = ? AND relation = ? AND id IN (…)` per type and relation: both dialects walk the subject
 * index with that, and SQLite has no row-value IN list.
 */
export function subjectIn(subjects: readonly TupleSubject[]): Expression<SqlBool> {
  const groups = groupBy(subjects, (s) => `${s.type}#${s.relation ?? ''}`)
  const terms = groups.map(([, members]) => {
    const first = members[0] as TupleSubject
    const ids = sql.join(members.map((s) => s.id))
    return sql`(subject_type = ${first.type} and subject_relation = ${first.relation ?? ''} and subject_id in (${ids}))`
  })
  return sql<SqlBool>`(${sql.join(terms, sql` or `)})`
}

/** Validates every tuple (all or nothing) and drops repeats; throws `ERR_INVALID_INPUT`. */
function validTuples(tuples: readonly RelationshipTuple[]): RelationshipTuple[] {
  if (!Array.isArray(tuples)) invalid('tuples must be a list')
  if (tuples.length > MAX_TUPLES_PER_CALL)
    invalid(`at most ${MAX_TUPLES_PER_CALL} tuples per call (got ${tuples.length})`)
  const unique = new Map<string, RelationshipTuple>()
  tuples.forEach((tuple, index) => {
    const problem = tupleProblem(tuple)
    if (problem) invalid(`tuple ${index + 1}: ${problem}`)
    const normalized: RelationshipTuple = {
      object: { type: tuple.object.type, id: tuple.object.id },
      relation: tuple.relation,
      subject: normalizeSubject(tuple.subject),
    }
    unique.set(formatTuple(normalized), normalized)
  })
  return [...unique.values()]
}

function validSubject(subject: TupleSubject): TupleSubject {
  invalidIf(subjectProblem(subject))
  return normalizeSubject(subject)
}

function invalidIf(problem: string | undefined, prefix = ''): void {
  if (problem) invalid(`${prefix}${problem}`)
}

function invalid(message: string): never {
  throw new DeputyError('ERR_INVALID_INPUT', message)
}

/** `items` in pieces of at most `size` (for IN lists). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Groups items by key, in the order each key first appears. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): [string, T[]][] {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const group = groups.get(k)
    if (group) group.push(item)
    else groups.set(k, [item])
  }
  return [...groups.entries()]
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
