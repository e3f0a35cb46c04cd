import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import { DeputyError, isDeputyError } from '../lib/errors.js'
import { hasNul } from '../lib/form.js'
import { explainCheck } from '../policy/relationship-path.js'
import { objectFilter, relationOf, tupleOf } from '../policy/tuple-input.js'
import { formatTuple, parseSubject, parseTuple } from '../policy/tuple-syntax.js'
import type { Relationships, RelationshipTuple } from '../policy/types.js'
import { checkPage, relationshipsPage, type TupleFilterView } from '../ui/console/relationships.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/** What the relationships pages read and change: the same tuples the admin API and CLI use. */
export interface RelationshipsConsoleDeps extends SessionDeps {
  relationships: Pick<Relationships, 'read' | 'write' | 'delete' | 'check' | 'expandSubject'>
}

/** Tuples a page shows. */
const PAGE_SIZE = 50

const NOTICES: Record<string, string> = {
  written: 'Tuple written.',
  kept: 'That tuple was already stored; nothing changed.',
  deleted: 'Tuple deleted.',
  absent: 'That tuple was not stored; nothing changed.',
}

/** A query parameter as typed: trimmed, bounded, without NUL (it is echoed into the form). */
function typed(c: Context<AppEnv>, name: string): string {
  const raw = (c.req.query(name) ?? '').trim()
  return hasNul(raw) ? '' : raw.slice(0, 600)
}

function filterOf(c: Context<AppEnv>): TupleFilterView {
  return {
    object: typed(c, 'object'),
    relation: typed(c, 'relation'),
    subject: typed(c, 'subject'),
  }
}

/** `?object=…&relation=…&subject=…` of the parts given. */
function queryOf(view: TupleFilterView, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries({ ...view, ...extra }))
    if (value) params.set(key, value)
  return params.toString()
}

/** A domain refusal as one line for the page, or rethrown. */
function problemOf(err: unknown): string {
  if (isDeputyError(err) && err.status < 500) {
    const text = `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}`
    return /[.!?]$/.test(text) ? text : `${text}.`
  }
  throw err
}

/** The tuple of a write form (three fields) or of a delete button (`tuple`, the text form). */
function formTuple(form: { get(name: string): string | undefined }): RelationshipTuple {
  const text = form.get('tuple')
  if (text !== undefined) return parseTuple(text)
  const [object, relation, subject] = ['object', 'relation', 'subject'].map((f) => form.get(f))
  if (!object || !relation || !subject)
    throw new DeputyError('ERR_INVALID_INPUT', 'give the object, the relation and the subject')
  return tupleOf({ object: object.trim(), relation: relation.trim(), subject: subject.trim() })
}

/** Where to go after a change: the tuples of the object it changed. */
function backTo(tuple: RelationshipTuple, outcome: string): string {
  const object = `${tuple.object.type}:${tuple.object.id}`
  return `/admin/relationships?${new URLSearchParams({ object, done: outcome })}`
}

/** Relationships (issue 15 §1): browse, write, delete and check relationship tuples. */
export function registerRelationshipPages(app: Hono<AppEnv>, deps: RelationshipsConsoleDeps): void {
  const { relationships } = deps

  app.get(
    '/admin/relationships',
    consoleView(deps, async (c, admin) => {
      const filter = filterOf(c)
      const after = typed(c, 'after')
      let tuples: RelationshipTuple[] = []
      let problem: string | undefined
      try {
        // One more than a page: whether there is a next one.
        tuples = await relationships.read(
          {
            ...(filter.object && { object: objectFilter(filter.object) }),
            ...(filter.relation && { relation: relationOf(filter.relation) }),
            ...(filter.subject && { subject: parseSubject(filter.subject) }),
            ...(after && { after: parseTuple(after) }),
          },
          PAGE_SIZE + 1,
        )
      } catch (err) {
        problem = problemOf(err)
      }
      const shown = tuples.slice(0, PAGE_SIZE)
      const last = shown.at(-1)
      return html(
        c,
        relationshipsPage({
          filter,
          tuples: shown.map(formatTuple),
          ...(tuples.length > PAGE_SIZE &&
            last && { nextQuery: queryOf(filter, { after: formatTuple(last) }) }),
          ...(problem && { problem }),
          csrfToken: admin.session.csrfToken,
          notice: NOTICES[c.req.query('done') ?? ''],
        }),
        problem ? 400 : 200,
      )
    }),
  )

  app.get(
    '/admin/relationships/check',
    consoleView(deps, async (c) => {
      const question = filterOf(c)
      try {
        const { object, relation, subject } = question
        if (!object || !relation || !subject)
          throw new DeputyError(
            'ERR_INVALID_INPUT',
            'give the object, the relation and the subject',
          )
        const answer = await explainCheck(relationships, tupleOf({ object, relation, subject }))
        return html(
          c,
          checkPage({
            question,
            answer: { allowed: answer.allowed, path: answer.path?.map(formatTuple) ?? null },
          }),
        )
      } catch (err) {
        return html(c, checkPage({ question, problem: problemOf(err) }), 400)
      }
    }),
  )

  app.post(
    '/admin/relationships',
    consoleAction(
      deps,
      () => '/admin/relationships',
      async (c, admin, form) => {
        const tuple = formTuple(form)
        const { written } = await relationships.write([tuple], admin.actor)
        return done(c, backTo(tuple, written > 0 ? 'written' : 'kept'))
      },
    ),
  )

  app.post(
    '/admin/relationships/delete',
    consoleAction(
      deps,
      () => '/admin/relationships',
      async (c, admin, form) => {
        const text = form.get('tuple')
        if (text === undefined)
          throw new DeputyError('ERR_INVALID_INPUT', 'name the tuple to delete')
        const tuple = parseTuple(text)
        const { deleted } = await relationships.delete([tuple], admin.actor)
        return done(c, backTo(tuple, deleted > 0 ? 'deleted' : 'absent'))
      },
    ),
  )
}
