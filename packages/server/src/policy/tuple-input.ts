import { z } from 'zod'
import { DeputyError } from '../lib/errors.js'
import {
  objectProblem,
  parseObject,
  parseSubject,
  parseTuple,
  relationProblem,
  subjectProblem,
  type TupleObject,
  tupleProblem,
  typeProblem,
} from './tuple-syntax.js'
import type { RelationshipTuple, TupleSubject } from './types.js'

// Tuples as the admin API takes them: the text form (`doc:readme#viewer@group:eng#member`) or
// the structured one, each part checked by tuple-syntax.ts's rules; a mistake is one line.

/** An object: `doc:readme`, or `{"type":"doc","id":"readme"}`. */
export const ObjectInput = z
  .union([z.string(), z.strictObject({ type: z.string(), id: z.string() })])
  .describe('`doc:readme`, or `{"type":"doc","id":"readme"}`.')
/** A subject: `user:alice`, `group:eng#member`, `user:*`, or the same as an object. */
export const SubjectInput = z
  .union([
    z.string(),
    z.strictObject({ type: z.string(), id: z.string(), relation: z.string().optional() }),
  ])
  .describe('`user:alice`, `group:eng#member`, `user:*`, or the same as an object.')
/** A tuple: `doc:readme#viewer@group:eng#member`, or the same as an object. */
export const TupleInput = z
  .union([
    z.string(),
    z.strictObject({ object: ObjectInput, relation: z.string(), subject: SubjectInput }),
  ])
  .describe('`doc:readme#viewer@group:eng#member`, or the same as an object.')

/** The subject as given, checked. */
export function subjectOf(input: z.infer<typeof SubjectInput>): TupleSubject {
  return typeof input === 'string' ? parseSubject(input) : checked(input, subjectProblem(input))
}

/** The tuple as given, checked. */
export function tupleOf(input: z.infer<typeof TupleInput>): RelationshipTuple {
  if (typeof input === 'string') return parseTuple(input)
  const tuple = {
    object: objectOf(input.object),
    relation: input.relation,
    subject: subjectOf(input.subject),
  }
  return checked(tuple, tupleProblem(tuple))
}

/** An object type (`doc`), checked. */
export function typeOf(type: string): string {
  return checked(type, typeProblem(type))
}

/** A relation name (`viewer`), checked. */
export function relationOf(relation: string): string {
  return checked(relation, relationProblem(relation))
}

/** `doc` (every object of a type) or `doc:readme` (one object), as a filter of tuples. */
export function objectFilter(text: string): { type: string; id?: string } {
  return text.includes(':') ? parseObject(text) : { type: typeOf(text.trim()) }
}

function objectOf(input: z.infer<typeof ObjectInput>): TupleObject {
  return typeof input === 'string' ? parseObject(input) : checked(input, objectProblem(input))
}

/** The value, or the problem found in it as one line. */
function checked<T>(value: T, problem: string | undefined): T {
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return value
}
