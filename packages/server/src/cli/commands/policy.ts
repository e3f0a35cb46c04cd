import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { DeputyDeps } from '../../deputy.js'
import { DeputyError, isDeputyError } from '../../lib/errors.js'
import {
  actionToWire,
  decisionToWire,
  parsedPolicyToWire,
  policyToWire,
  policyVersionToWire,
  problemToWire,
  schemaText,
  simulatedActionToWire,
} from '../../policy/admin-wire.js'
import { authorizationRequest, type DecisionQuery, personSub } from '../../policy/decision-query.js'
import type { PolicyDecision, PolicyProblem, StoredPolicy } from '../../policy/types.js'
import { type GlobalOptions, globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor } from './users.js'

/** Exit codes of `policy test` and `policy explain`, so scripts can branch on the decision. */
const EXIT_CODES: Record<PolicyDecision['decision'], number> = {
  allow: 0,
  deny: 1,
  needs_approval: 2,
}

/** A policy file, or `-` for standard input; the name problems are reported against. */
function readPolicyText(file: string): { name: string; text: string } {
  if (file === '-') return { name: '<stdin>', text: readFileSync(0, 'utf8') }
  try {
    return { name: file, text: readFileSync(file, 'utf8') }
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', `cannot read ${file}`)
  }
}

/** `policy.cedar:3:14: unexpected token (expected `;`)`, as compilers print them. */
function formatProblem(name: string, problem: PolicyProblem): string {
  const where = `${name}:${problem.line}:${problem.column}`
  const policy = problem.policyId === undefined ? '' : `[${problem.policyId}] `
  return `${where}: ${policy}${problem.message}${problem.help ? ` (${problem.help})` : ''}`
}

/**
 * Reports a refused policy text: each problem on its own line on stderr (or the problems as JSON
 * on stdout with --json) and exit code 1. Anything else is rethrown for the one error line.
 */
function reportProblems(
  options: GlobalOptions,
  name: string,
  problems: readonly PolicyProblem[],
): void {
  if (options.json) {
    output(options, { valid: false, problems: problems.map(problemToWire) }, () => '')
  } else {
    process.stderr.write(`${problems.map((p) => formatProblem(name, p)).join('\n')}\n`)
  }
  process.exitCode = 1
}

/** A JSON option's value, with one line saying what is wrong otherwise. */
function parseJsonOption(flag: string, text: string | undefined, object: boolean): unknown {
  if (text === undefined) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `${flag} is not valid JSON (${(err as Error).message.split('\n')[0]})`,
    )
  }
  if (object && (typeof value !== 'object' || value === null || Array.isArray(value)))
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `${flag} must be a JSON object, like '{"demoMode":"ban"}'`,
    )
  return value
}

interface DecisionOptions {
  person: string
  agent?: string
  action: string
  resource?: string
  args?: string
  state?: string
  scopes?: string
  approved?: boolean
}

function decisionQuery(opts: DecisionOptions): DecisionQuery {
  const args = parseJsonOption('--args', opts.args, false)
  const state = parseJsonOption('--state', opts.state, true) as Record<string, unknown> | undefined
  return {
    person: opts.person,
    ...(opts.agent === undefined ? {} : { clientId: opts.agent }),
    action: opts.action,
    ...(opts.resource === undefined ? {} : { resource: opts.resource }),
    ...(args === undefined ? {} : { arguments: args }),
    ...(state === undefined ? {} : { state }),
    scopes: (opts.scopes ?? '').split(/[\s,]+/).filter(Boolean),
    approved: opts.approved === true,
  }
}

function decisionOptions(command: Command): Command {
  return command
    .requiredOption('--person <email|id>', 'the person (email or user id)')
    .option('--agent <client_id>', 'the agent (OAuth client id) acting for them')
    .requiredOption(
      '--action <id|tool>',
      'the action: its id (<resource>#<tool>, read), or a tool name (on --resource, or on the one server that has it)',
    )
    .option(
      '--resource <uri|doc:id>',
      "the MCP server (default: the action's own) or a document or folder (doc:readme, folder:eng)",
    )
    .option('--args <json>', 'tool arguments as JSON, e.g. \'{"item":"tshirt"}\'')
    .option('--state <json>', 'the person\'s state as JSON, e.g. \'{"demoMode":"ban"}\'')
    .option(
      '--scopes <scopes>',
      'the token\'s scopes, space-separated, e.g. "shop:order shop:read"',
    )
    .option('--approved', 'the person approved this call')
}

/** Decides without an audit event, and sets the exit code from the decision. */
async function explainQuery(
  deps: DeputyDeps,
  opts: DecisionOptions,
): Promise<{ decision: PolicyDecision; deciding: StoredPolicy[] }> {
  await requirePerson(deps, opts.person)
  const decision = await deps.policy.explain(await authorizationRequest(deps, decisionQuery(opts)))
  const deciding: StoredPolicy[] = []
  for (const id of decision.policies) {
    const policy = await deps.policies.get(id)
    if (policy) deciding.push(policy)
  }
  process.exitCode = EXIT_CODES[decision.decision]
  return { decision, deciding }
}

/**
 * Refuses a person Deputy does not know. The engine would decide for them anyway (a deny naming
 * no such person, which the admin API keeps), but at the terminal a mistyped email must not read
 * like a policy's answer.
 */
async function requirePerson(deps: DeputyDeps, person: string): Promise<void> {
  if (await deps.users.findById(person)) return
  if (person.includes('@') && (await deps.users.findByEmail(person))) return
  throw new DeputyError(
    'ERR_NOT_FOUND',
    `no person ${person}: no user has this email or id (\`deputy users list\` shows them)`,
  )
}

/** The long form of a decision, for `policy explain`. */
function longForm(decision: PolicyDecision, deciding: readonly StoredPolicy[]): string {
  const lines = [`decision: ${decision.decision}`, `explanation: ${decision.explanation}`]
  if (decision.message !== undefined) lines.push(`message: ${decision.message}`)
  if (decision.policies.length === 0) {
    lines.push('deciding policies: none')
  } else {
    lines.push('deciding policies:')
    for (const id of decision.policies) {
      const policy = deciding.find((p) => p.id === id)
      if (!policy) {
        lines.push(`  ${id}`)
        continue
      }
      lines.push(`  ${id} (${policy.effect}, version ${policy.version})`)
      if (policy.description) lines.push(`    description: ${policy.description}`)
      if (policy.message) lines.push(`    message: ${policy.message}`)
    }
  }
  if (decision.errors.length > 0) {
    lines.push('errors:')
    for (const error of decision.errors) lines.push(`  ${error.policyId}: ${error.message}`)
  }
  lines.push(`policy set version: ${decision.setVersion}`)
  return lines.join('\n')
}

/**
 * `deputy policy …`: validate, add, list, show, remove Cedar policies; print the schema; test,
 * explain and simulate decisions.
 */
export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description('manage Cedar policies and ask what they decide (docs/policies.md)')

  policy
    .command('validate <file>')
    .description('check a policy file (or - for stdin) against the schema; stores nothing')
    .option('--id <id>', 'the id of the one statement in the file, if it has no @id')
    .action(async (file: string, opts: { id?: string }, command: Command) => {
      const options = globalOptions(command)
      const { name, text } = readPolicyText(file)
      const result = await withDeputy(options, (deps) =>
        deps.policies.validate(text, opts.id === undefined ? {} : { id: opts.id }),
      )
      if (!result.ok) {
        reportProblems(options, name, result.problems)
        return
      }
      output(
        options,
        { valid: true, policies: result.policies.map(parsedPolicyToWire) },
        () => `OK: ${result.policies.map((p) => p.id).join(', ') || '(no statements)'}`,
      )
    })

  policy
    .command('add <file>')
    .description('validate and store the policies of a file (or - for stdin) as new versions')
    .option('--id <id>', 'the id of the one statement in the file, if it has no @id')
    .action(async (file: string, opts: { id?: string }, command: Command) => {
      const options = globalOptions(command)
      const { name, text } = readPolicyText(file)
      let stored: StoredPolicy[]
      try {
        stored = await withDeputy(options, (deps) =>
          deps.policies.put(text, cliActor(), opts.id === undefined ? {} : { id: opts.id }),
        )
      } catch (err) {
        if (isDeputyError(err) && err.code === 'ERR_POLICY_INVALID' && err.problems?.length) {
          reportProblems(options, name, err.problems as PolicyProblem[])
          return
        }
        throw err
      }
      output(options, stored.map(policyToWire), () =>
        stored
          .map((p) => `stored ${p.id} version ${p.version} (policy set version ${p.setVersion})`)
          .join('\n'),
      )
    })

  policy
    .command('list')
    .description('list the current policies')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.policies.list())
      output(options, list.map(policyToWire), () =>
        table(
          list.map((p) => ({
            id: p.id,
            effect: p.effect,
            version: p.version,
            actions: p.actions ?? ['(all)'],
            description: p.description,
          })),
          ['id', 'effect', 'version', 'actions', 'description'],
        ),
      )
    })

  policy
    .command('show <id>')
    .description('print a policy; --history lists every version')
    .option('--history', 'every version, oldest first')
    .action(async (id: string, opts: { history?: boolean }, command: Command) => {
      const options = globalOptions(command)
      const { current, history } = await withDeputy(options, async (deps) => ({
        current: await deps.policies.get(id),
        history: opts.history ? await deps.policies.history(id) : [],
      }))
      if (opts.history) {
        if (history.length === 0) throw new DeputyError('ERR_NOT_FOUND', `no policy ${id}`)
        output(options, history.map(policyVersionToWire), () =>
          history
            .map((v) =>
              [
                `-- version ${v.version} (policy set version ${v.setVersion}), ${v.createdAt} by ${v.createdBy}`,
                v.text ?? '(removed)',
              ].join('\n'),
            )
            .join('\n\n'),
        )
        return
      }
      if (!current) throw new DeputyError('ERR_NOT_FOUND', `no policy ${id}`)
      output(options, policyToWire(current), () =>
        [
          `-- ${current.id}: ${current.effect}, version ${current.version} (policy set version ${current.setVersion}), ${current.createdAt} by ${current.createdBy}`,
          current.text,
        ].join('\n'),
      )
    })

  policy
    .command('remove <id>')
    .description('remove a policy (its history stays)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      await withDeputy(options, (deps) => deps.policies.remove(id, cliActor()))
      output(options, { id, removed: true }, () => `removed ${id}`)
    })

  policy
    .command('schema')
    .description('print the Cedar schema in force (Cedar schema text; JSON with --json)')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const schema = await withDeputy(options, (deps) => deps.policies.schema())
      output(options, schema, () => schemaText(schema).trimEnd())
    })

  policy
    .command('actions')
    .description('list the actions policies can name (one per tool of each server, and read)')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const actions = await withDeputy(options, (deps) => deps.policies.actions())
      output(options, actions.map(actionToWire), () =>
        table(
          actions.map((a) => ({
            action: a.id,
            tool: a.name,
            description: a.description,
          })),
          ['action', 'tool', 'description'],
        ),
      )
    })

  decisionOptions(
    policy
      .command('test')
      .description(
        'decide one request and print the decision and why; exit 0 allow, 1 deny, 2 needs approval',
      ),
  ).action(async (opts: DecisionOptions, command: Command) => {
    const options = globalOptions(command)
    const { decision } = await withDeputy(options, (deps) => explainQuery(deps, opts))
    output(options, decisionToWire(decision), () =>
      [
        `${decision.decision}: ${decision.explanation}`,
        ...(decision.message === undefined ? [] : [`message: ${decision.message}`]),
      ].join('\n'),
    )
  })

  decisionOptions(
    policy
      .command('explain')
      .description(
        'decide one request and explain it at length: the deciding policies, their descriptions ' +
          'and messages, errors; exit codes as for test',
      ),
  ).action(async (opts: DecisionOptions, command: Command) => {
    const options = globalOptions(command)
    const { decision, deciding } = await withDeputy(options, (deps) => explainQuery(deps, opts))
    output(options, { ...decisionToWire(decision), deciding: deciding.map(policyToWire) }, () =>
      longForm(decision, deciding),
    )
  })

  policy
    .command('simulate')
    .description('what may this agent do for this person: every declared action, decided')
    .requiredOption('--person <email|id>', 'the person (email or user id)')
    .option('--agent <client_id>', 'the agent (OAuth client id) acting for them')
    .action(async (opts: { person: string; agent?: string }, command: Command) => {
      const options = globalOptions(command)
      const rows = await withDeputy(options, async (deps) => {
        await requirePerson(deps, opts.person)
        return deps.policy.simulate({
          sub: await personSub(deps, opts.person),
          ...(opts.agent === undefined ? {} : { clientId: opts.agent }),
        })
      })
      output(options, rows.map(simulatedActionToWire), () =>
        table(
          rows.map((r) => ({ ...r })),
          ['action', 'resource', 'decision', 'policies', 'explanation'],
        ),
      )
    })
}
