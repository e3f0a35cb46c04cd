import { DeputyError } from '../lib/errors.js'
import type { RelationshipTuple, TupleSubject } from './types.js'

// The text form of relationship tuples, as people type them in the CLI and the admin API:
// `doc:readme#viewer@user:alice`, `doc:readme#viewer@group:eng#member`, `doc:faq#viewer@user:*`.
// Ids cannot hold `#`, `@` or whitespace, so the text splits without escaping.

/** An object of a tuple: `doc:readme`. */
export interface TupleObject {
  readonly type: string
  readonly id: string
}

const TYPE = /^[a-z][a-z0-9_-]{0,63}$/
const RELATION = /^[a-z][a-z0-9_]{0,63}$/
const ID = /^[^\s#@\p{Cc}]{1,256}$/u

/** `*` as a subject id: every subject of the type (`user:*`). */
export const WILDCARD = '*'

const EXAMPLE = 'e.g. doc:readme#viewer@user:alice'

/** The problem with a type name, or undefined when it is valid. */
export function typeProblem(type: unknown): string | undefined {
  if (typeof type !== 'string' || !TYPE.test(type))
    return `type ${quote(type)} must be a lower-case letter then up to 63 of a-z, 0-9, _ or -`
  return undefined
}

/** The problem with a relation name, or undefined when it is valid. */
export function relationProblem(relation: unknown): string | undefined {
  if (typeof relation !== 'string' || !RELATION.test(relation))
    return `relation ${quote(relation)} must be a lower-case letter then up to 63 of a-z, 0-9 or _`
  return undefined
}

/** The problem with an object or subject id, or undefined when it is valid. */
export function idProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || !ID.test(id))
    return `id ${quote(id)} must be 1–256 characters without whitespace, '#' or '@'`
  return undefined
}

/** The problem with a tuple's object, or undefined. `*` is for subjects only. */
export function objectProblem(object: unknown): string | undefined {
  if (typeof object !== 'object' || object === null) return 'object is missing'
  const { type, id } = object as { type?: unknown; id?: unknown }
  const problem = typeProblem(type) ?? idProblem(id)
  if (problem) return `object ${problem}`
  if (id === WILDCARD) return `object id cannot be '*' (the wildcard is for subjects: user:*)`
  return undefined
}

/** The problem with a subject (`user:alice`, `group:eng#member`, `user:*`), or undefined. */
export function subjectProblem(subject: unknown): string | undefined {
  if (typeof subject !== 'object' || subject === null) return 'subject is missing'
  const { type, id, relation } = subject as { type?: unknown; id?: unknown; relation?: unknown }
  const problem =
    typeProblem(type) ??
    idProblem(id) ??
    (relation === undefined ? undefined : relationProblem(relation))
  if (problem) return `subject ${problem}`
  if (id === WILDCARD && relation !== undefined)
    return `subject ${type}:*#${relation} is not allowed: a wildcard stands for plain subjects only`
  return undefined
}

/** The problem with a tuple, or undefined when it may be stored. */
export function tupleProblem(tuple: unknown): string | undefined {
  if (typeof tuple !== 'object' || tuple === null) return 'a tuple must be an object'
  const { object, relation, subject } = tuple as Partial<RelationshipTuple>
  return objectProblem(object) ?? relationProblem(relation) ?? subjectProblem(subject)
}

/** `doc:readme`. */
export function formatObject(object: TupleObject): string {
  return `${object.type}:${object.id}`
}

/** `user:alice`, `group:eng#member`, `user:*`. */
export function formatSubject(subject: TupleSubject): string {
  return subject.relation === undefined
    ? `${subject.type}:${subject.id}`
    : `${subject.type}:${subject.id}#${subject.relation}`
}

/** `doc:readme#viewer@group:eng#member`. */
export function formatTuple(tuple: RelationshipTuple): string {
  return `${formatObject(tuple.object)}#${tuple.relation}@${formatSubject(tuple.subject)}`
}

/** Parses `type:id`; throws `ERR_INVALID_INPUT` with one line naming the problem. */
export function parseObject(text: string): TupleObject {
  const trimmed = text.trim()
  const object = splitTypeAndId(trimmed, 'object')
  if (trimmed.includes('#') || trimmed.includes('@'))
    invalid(`invalid object ${quote(trimmed)}: expected type:id, e.g. doc:readme`)
  const problem = objectProblem(object)
  if (problem) invalid(`invalid object ${quote(trimmed)}: ${problem}`)
  return object
}

/** Parses `type:id`, `type:id#relation` or `type:*`; throws `ERR_INVALID_INPUT` on bad input. */
export function parseSubject(text: string): TupleSubject {
  const trimmed = text.trim()
  if (trimmed.includes('@'))
    invalid(`invalid subject ${quote(trimmed)}: expected type:id or type:id#relation`)
  const hash = trimmed.indexOf('#')
  const subject = splitTypeAndId(hash < 0 ? trimmed : trimmed.slice(0, hash), 'subject')
  const parsed: TupleSubject =
    hash < 0 ? subject : { ...subject, relation: trimmed.slice(hash + 1) }
  if (hash >= 0 && parsed.relation?.includes('#'))
    invalid(`invalid subject ${quote(trimmed)}: more than one '#'`)
  const problem = subjectProblem(parsed)
  if (problem) invalid(`invalid subject ${quote(trimmed)}: ${problem}`)
  return parsed
}

/**
 * Parses `object#relation@subject` (`doc:readme#viewer@group:eng#member`); throws
 * `ERR_INVALID_INPUT` with one line naming what is wrong.
 */
export function parseTuple(text: string): RelationshipTuple {
  const trimmed = text.trim()
  if (trimmed === '') invalid(`empty tuple: expected object#relation@subject, ${EXAMPLE}`)
  const at = trimmed.indexOf('@')
  if (at < 0)
    invalid(
      `invalid tuple ${quote(trimmed)}: missing @subject (expected object#relation@subject, ${EXAMPLE})`,
    )
  if (trimmed.indexOf('@', at + 1) >= 0)
    invalid(`invalid tuple ${quote(trimmed)}: more than one '@'`)
  const left = trimmed.slice(0, at)
  const hash = left.indexOf('#')
  if (hash < 0)
    invalid(
      `invalid tuple ${quote(trimmed)}: missing #relation (expected object#relation@subject, ${EXAMPLE})`,
    )
  if (left.indexOf('#', hash + 1) >= 0)
    invalid(`invalid tuple ${quote(trimmed)}: more than one '#' before '@'`)
  const tuple: RelationshipTuple = {
    object: splitTypeAndId(left.slice(0, hash), 'object', trimmed),
    relation: left.slice(hash + 1),
    subject: parseSubjectOf(trimmed.slice(at + 1), trimmed),
  }
  const problem = tupleProblem(tuple)
  if (problem) invalid(`invalid tuple ${quote(trimmed)}: ${problem}`)
  return tuple
}

function parseSubjectOf(text: string, whole: string): TupleSubject {
  const hash = text.indexOf('#')
  if (hash < 0) return splitTypeAndId(text, 'subject', whole)
  if (text.indexOf('#', hash + 1) >= 0)
    invalid(`invalid tuple ${quote(whole)}: more than one '#' after '@'`)
  return {
    ...splitTypeAndId(text.slice(0, hash), 'subject', whole),
    relation: text.slice(hash + 1),
  }
}

function splitTypeAndId(text: string, part: 'object' | 'subject', whole = text): TupleObject {
  const colon = text.indexOf(':')
  if (colon < 0) {
    const what = whole === text ? `${part} ${quote(text)}` : `tuple ${quote(whole)}`
    invalid(`invalid ${what}: ${part} ${quote(text)} needs a type, as in type:id (e.g. user:alice)`)
  }
  return { type: text.slice(0, colon), id: text.slice(colon + 1) }
}

function invalid(message: string): never {
  throw new DeputyError('ERR_INVALID_INPUT', message)
}

/** Quotes a value for a message, shortened so one bad input stays one line. */
function quote(value: unknown): string {
  if (typeof value !== 'string') return value === undefined ? '(missing)' : `(${typeof value})`
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value
  return JSON.stringify(shown)
}
