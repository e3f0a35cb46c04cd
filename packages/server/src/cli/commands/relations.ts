import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { DeputyError } from '../../lib/errors.js'
import { tupleToWire } from '../../policy/admin-wire.js'
import { objectFilter } from '../../policy/tuple-input.js'
import {
  formatTuple,
  parseSubject,
  parseTuple,
  relationProblem,
  typeProblem,
} from '../../policy/tuple-syntax.js'
import type { RelationshipTuple } from '../../policy/types.js'
import { globalOptions, output, withDeputy } from '../context.js'
import { cliActor } from './users.js'

/**
 * The tuples of the arguments and of `--file` (one per line; blank lines and lines starting with
 * `#` are skipped; `-` is stdin). A bad line is named by its number.
 */
function tuplesOf(args: readonly string[], file: string | undefined): RelationshipTuple[] {
  const tuples = args.map((text) => parseTuple(text))
  if (file !== undefined) {
    let text: string
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8')
    } catch {
      throw new DeputyError('ERR_INVALID_INPUT', `cannot read ${file}`)
    }
    const name = file === '-' ? '<stdin>' : file
    text.split(/\r?\n/).forEach((line, index) => {
      if (line.trim() === '' || line.trim().startsWith('#')) return
      try {
        tuples.push(parseTuple(line))
      } catch (err) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `${name}:${index + 1}: ${(err as Error).message}`,
        )
      }
    })
  }
  if (tuples.length === 0)
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      'give tuples as arguments (doc:readme#viewer@user:alice) or --file with one per line',
    )
  return tuples
}

function checked(problem: string | undefined, value: string): string {
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
  return value
}

/** Object ids one per line, `(none)` when there are none. */
function idLines(ids: readonly string[]): string {
  return ids.length === 0 ? '(none)' : ids.join('\n')
}

interface QueryOptions {
  subject: string
  relation: string
  type: string
}

/** `deputy relations …`: write, delete, check and query relationship tuples. */
export function registerRelations(program: Command): void {
  const relations = program
    .command('relations')
    .description('manage relationship tuples: object#relation@subject (docs/policies.md)')

  for (const verb of ['write', 'delete'] as const) {
    relations
      .command(`${verb} [tuple...]`)
      .description(
        verb === 'write'
          ? 'write tuples, e.g. doc:readme#viewer@group:eng#member (existing ones are kept)'
          : 'delete tuples (absent ones are ignored)',
      )
      .option('--file <file>', 'read tuples from a file (or - for stdin), one per line')
      .action(async (args: string[], opts: { file?: string }, command: Command) => {
        const options = globalOptions(command)
        const tuples = tuplesOf(args, opts.file)
        if (verb === 'write') {
          const result = await withDeputy(options, (deps) =>
            deps.relationships.write(tuples, cliActor()),
          )
          output(options, result, () => `wrote ${result.written} of ${tuples.length} tuples`)
        } else {
          const result = await withDeputy(options, (deps) =>
            deps.relationships.delete(tuples, cliActor()),
          )
          output(options, result, () => `deleted ${result.deleted} of ${tuples.length} tuples`)
        }
      })
  }

  relations
    .command('check <tuple>')
    .description(
      'does the subject have the relation on the object (through groups too)? exit 0 yes, 1 no',
    )
    .action(async (text: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const tuple = parseTuple(text)
      const allowed = await withDeputy(options, (deps) => deps.relationships.check(tuple))
      output(options, { allowed }, () => (allowed ? 'allowed' : 'not allowed'))
      process.exitCode = allowed ? 0 : 1
    })

  const queryOptions = (command: Command) =>
    command
      .requiredOption('--subject <subject>', 'user:alice, group:eng#member, …')
      .requiredOption('--relation <relation>', 'e.g. viewer')
      .requiredOption('--type <type>', 'the object type, e.g. doc')

  queryOptions(
    relations
      .command('list-objects')
      .description('every object of a type on which the subject has the relation'),
  ).action(async (opts: QueryOptions, command: Command) => {
    const options = globalOptions(command)
    const query = {
      subject: parseSubject(opts.subject),
      relation: checked(relationProblem(opts.relation), opts.relation),
      type: checked(typeProblem(opts.type), opts.type),
    }
    const objects = await withDeputy(options, (deps) => deps.relationships.listObjects(query))
    output(options, { objects }, () => idLines(objects))
  })

  queryOptions(
    relations
      .command('filter <id...>')
      .description('the given object ids on which the subject has the relation, in their order'),
  ).action(async (ids: string[], opts: QueryOptions, command: Command) => {
    const options = globalOptions(command)
    const query = {
      subject: parseSubject(opts.subject),
      relation: checked(relationProblem(opts.relation), opts.relation),
      type: checked(typeProblem(opts.type), opts.type),
      objects: ids,
    }
    const objects = await withDeputy(options, (deps) => deps.relationships.filter(query))
    output(options, { objects }, () => idLines(objects))
  })

  relations
    .command('list')
    .description('list stored tuples, optionally of one object (or type), relation or subject')
    .option('--object <object>', 'doc (a type) or doc:readme (one object)')
    .option('--relation <relation>', 'e.g. viewer')
    .option('--subject <subject>', 'user:alice, group:eng#member, …')
    .option('-n, --limit <count>', 'at most this many (1–1000)', '1000')
    .action(
      async (
        opts: { object?: string; relation?: string; subject?: string; limit: string },
        command: Command,
      ) => {
        const options = globalOptions(command)
        const limit = Number(opts.limit)
        if (!/^\d+$/.test(opts.limit) || limit < 1 || limit > 1000)
          throw new DeputyError(
            'ERR_INVALID_INPUT',
            `--limit must be a whole number from 1 to 1000, not "${opts.limit}"`,
          )
        const filter = {
          ...(opts.object === undefined ? {} : { object: objectFilter(opts.object) }),
          ...(opts.relation === undefined
            ? {}
            : { relation: checked(relationProblem(opts.relation), opts.relation) }),
          ...(opts.subject === undefined ? {} : { subject: parseSubject(opts.subject) }),
        }
        const tuples = await withDeputy(options, (deps) => deps.relationships.read(filter, limit))
        output(options, tuples.map(tupleToWire), () =>
          tuples.length === 0 ? '(none)' : tuples.map(formatTuple).join('\n'),
        )
      },
    )
}
