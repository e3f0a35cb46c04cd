import { z } from 'zod'
import { DeputyError } from '../lib/errors.js'
import { MAX_BATCH, route } from './admin-route-record.js'
import { TupleWire, tupleToWire } from './admin-wire.js'
import {
  ObjectInput,
  objectFilter,
  relationOf,
  SubjectInput,
  subjectOf,
  TupleInput,
  tupleOf,
  typeOf,
} from './tuple-input.js'
import { parseSubject } from './tuple-syntax.js'

// The relationship tuples' routes of the admin API: read, write and delete tuples, and ask the
// questions of the graph (check, list-objects, filter).

const TuplesBody = z.strictObject({ tuples: z.array(TupleInput).min(1).max(MAX_BATCH) })

const CheckBody = z.strictObject({
  object: ObjectInput,
  relation: z.string(),
  subject: SubjectInput,
})

const ListObjectsBody = z.strictObject({
  subject: SubjectInput,
  relation: z.string(),
  type: z.string().describe('The object type, e.g. `doc`.'),
})

const FilterBody = ListObjectsBody.extend({
  objects: z.array(z.string()).max(10_000).describe('Candidate object ids of `type`.'),
})

const RelationsQuery = z.strictObject({
  object: z.string().optional().describe('`doc` (a type) or `doc:readme` (one object).'),
  relation: z.string().optional(),
  subject: z.string().optional().describe('`user:alice`, `group:eng#member`, …'),
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .optional()
    .describe('At most this many tuples (1–1000, default 1000).'),
})

/** Reading, writing and questioning relationship tuples (paths under /admin/api). */
export const RELATION_ROUTES = [
  route({
    method: 'get',
    path: '/relations',
    summary: 'Relationship tuples matching a filter (any part may be left out)',
    query: RelationsQuery,
    response: z.object({ tuples: z.array(TupleWire) }),
    errors: [400],
    handle: async ({ deps, query: filter }) => {
      const limit = filter.limit === undefined ? 1000 : Number(filter.limit)
      if (limit < 1 || limit > 1000)
        throw new DeputyError('ERR_INVALID_INPUT', 'limit must be from 1 to 1000')
      const tuples = await deps.relationships.read(
        {
          ...(filter.object === undefined ? {} : { object: objectFilter(filter.object) }),
          ...(filter.relation === undefined ? {} : { relation: relationOf(filter.relation) }),
          ...(filter.subject === undefined ? {} : { subject: parseSubject(filter.subject) }),
        },
        limit,
      )
      return { tuples: tuples.map(tupleToWire) }
    },
  }),
  route({
    method: 'post',
    path: '/relations',
    summary: 'Write tuples in one transaction (an existing tuple is kept)',
    body: TuplesBody,
    response: z.object({ written: z.number().describe('Tuples that were not there before.') }),
    errors: [400],
    handle: async ({ deps, body, actor }) =>
      deps.relationships.write(body.tuples.map(tupleOf), actor),
  }),
  route({
    method: 'post',
    path: '/relations/delete',
    summary: 'Delete tuples in one transaction (absent ones are ignored)',
    body: TuplesBody,
    response: z.object({ deleted: z.number() }),
    errors: [400],
    handle: async ({ deps, body, actor }) =>
      deps.relationships.delete(body.tuples.map(tupleOf), actor),
  }),
  route({
    method: 'post',
    path: '/relations/check',
    summary: 'Does the subject have the relation on the object, directly or through usersets?',
    body: CheckBody,
    response: z.object({ allowed: z.boolean() }),
    errors: [400],
    handle: async ({ deps, body }) => {
      const tuple = tupleOf({ object: body.object, relation: body.relation, subject: body.subject })
      return { allowed: await deps.relationships.check(tuple) }
    },
  }),
  route({
    method: 'post',
    path: '/relations/list-objects',
    summary: 'Every object of a type on which the subject has the relation',
    body: ListObjectsBody,
    response: z.object({ objects: z.array(z.string()) }),
    errors: [400],
    handle: async ({ deps, body }) => ({
      objects: await deps.relationships.listObjects({
        subject: subjectOf(body.subject),
        relation: relationOf(body.relation),
        type: typeOf(body.type),
      }),
    }),
  }),
  route({
    method: 'post',
    path: '/relations/filter',
    summary: 'The subset of `objects` on which the subject has the relation, in their order',
    body: FilterBody,
    response: z.object({ objects: z.array(z.string()) }),
    errors: [400],
    handle: async ({ deps, body }) => ({
      objects: await deps.relationships.filter({
        subject: subjectOf(body.subject),
        relation: relationOf(body.relation),
        type: typeOf(body.type),
        objects: body.objects,
      }),
    }),
  }),
]
