import type { Command } from 'commander'
import type { z } from 'zod'
import {
  type ApprovalWire,
  decideAsOperator,
  listApprovals,
  showApproval,
} from '../../approvals/admin-routes.js'
import type { DeputyDeps } from '../../deputy.js'
import { DeputyError } from '../../lib/errors.js'
import { globalOptions, output, table, withDeputy } from '../context.js'
import { cliActor } from './users.js'

type Approval = z.infer<typeof ApprovalWire>

interface ListOptions {
  status?: string
  person?: string
  client?: string
  limit?: string
}

/** An approval request in lines a person reads. */
function describe(approval: Approval): string {
  return [
    `approval request ${approval.id}: ${approval.status}`,
    `  person       ${approval.user_email ?? '(removed)'} (${approval.user_id})`,
    `  client       ${approval.client_id}`,
    `  resource     ${approval.resource}`,
    `  scopes       ${approval.scopes.join(' ') || '-'}`,
    ...(approval.binding_message === null ? [] : [`  message      ${approval.binding_message}`]),
    ...approval.details_in_words.map((words) => `  detail       ${words}`),
    `  created      ${approval.created_at}`,
    `  expires      ${approval.expires_at}`,
    ...(approval.decided_at === null
      ? []
      : [
          `  decided      ${approval.decided_at} by ${approval.decided_by?.label ?? approval.decided_by?.id}`,
        ]),
    ...(approval.consumed_at === null ? [] : [`  token issued ${approval.consumed_at}`]),
  ].join('\n')
}

/** The operator's decision, then the ping (if any) before the command's process ends. */
async function decide(deps: DeputyDeps, id: string, decision: 'approved' | 'denied') {
  const approval = await decideAsOperator(deps, { id, decision, actor: cliActor() })
  await deps.notifier.idle()
  return approval
}

/** `deputy approvals …`: list, show, approve, deny backchannel (CIBA) approval requests. */
export function registerApprovals(program: Command): void {
  const approvals = program
    .command('approvals')
    .description('list and decide approval (CIBA) requests as the operator')

  approvals
    .command('list')
    .description('list approval requests, newest first')
    .option('--status <status>', 'pending, approved, denied or expired')
    .option('--person <email|id>', "only this person's requests")
    .option('--client <client_id>', "only this client's requests")
    .option('--limit <n>', 'at most this many (default 100, at most 1000)')
    .action(async (opts: ListOptions, command: Command) => {
      const options = globalOptions(command)
      const limit = opts.limit === undefined ? undefined : Number(opts.limit)
      if (limit !== undefined && !Number.isInteger(limit))
        throw new DeputyError('ERR_INVALID_INPUT', '--limit must be a whole number')
      const list = await withDeputy(options, (deps) =>
        listApprovals(deps, {
          ...(opts.status === undefined ? {} : { status: opts.status }),
          ...(opts.person === undefined ? {} : { person: opts.person }),
          ...(opts.client === undefined ? {} : { client: opts.client }),
          ...(limit === undefined ? {} : { limit }),
        }),
      )
      output(options, list, () =>
        table(
          list.map((a) => ({
            id: a.id,
            status: a.status,
            person: a.user_email ?? a.user_id,
            client: a.client_id,
            message: a.binding_message,
            expires: a.expires_at,
          })),
          ['id', 'status', 'person', 'client', 'message', 'expires'],
        ),
      )
    })

  approvals
    .command('show <id>')
    .description('show one approval request: who asks, for whom, the details in words')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const approval = await withDeputy(options, (deps) => showApproval(deps, id))
      output(options, approval, () => describe(approval))
    })

  for (const [name, decision] of [
    ['approve', 'approved'],
    ['deny', 'denied'],
  ] as const) {
    approvals
      .command(`${name} <id>`)
      .description(
        `${name} a pending request as the operator (recorded in the audit chain, with you as actor, before it is in force)`,
      )
      .action(async (id: string, _opts: unknown, command: Command) => {
        const options = globalOptions(command)
        const approval = await withDeputy(options, (deps) => decide(deps, id, decision))
        output(options, approval, () => `${decision} approval request ${approval.id}`)
      })
  }
}
