import type { Context, Hono } from 'hono'
import {
  type ApprovalRouteDeps,
  decideAsOperator,
  showApproval,
} from '../approvals/admin-routes.js'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import type { Users } from '../identity/users.js'
import { DeputyError, isDeputyError } from '../lib/errors.js'
import type { Clients } from '../oauth/clients.js'
import { type ApprovalDetailView, approvalPage } from '../ui/console/approval.js'
import { type ApprovalView, approvalsListPage } from '../ui/console/approvals.js'
import { consoleAction, consoleView, done, html } from './gate.js'

/**
 * What the approval pages read and decide with: the same functions as `deputy approvals` and the
 * admin API (approvals/admin-routes.ts), so a decision is stored once and audited the same way.
 */
export interface ApprovalsConsoleDeps
  extends SessionDeps,
    Omit<ApprovalRouteDeps, 'users' | 'clients'> {
  users: Pick<Users, 'findById' | 'findByEmail'>
  clients: Pick<Clients, 'get'>
}

const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const

const NOTICES: Record<string, string> = {
  approved: 'Approved for the person: the agent may now get its one token.',
  denied: 'Denied: the agent is refused.',
}

function approvalPath(id: string, rest = ''): string {
  return `/admin/approvals/${encodeURIComponent(id)}${rest}`
}

/** Approvals (issue 15 §1): every request by status, one request's page, an operator's decision. */
export function registerApprovalPages(app: Hono<AppEnv>, deps: ApprovalsConsoleDeps): void {
  app.get(
    '/admin/approvals',
    consoleView(deps, async (c) => {
      const asked = c.req.query('status') ?? 'pending'
      const status = (APPROVAL_STATUSES as readonly string[]).includes(asked)
        ? (asked as (typeof APPROVAL_STATUSES)[number])
        : asked === 'all'
          ? undefined
          : 'pending'
      const requests = await deps.approvals.list({ ...(status && { status }), limit: 100 })
      const names = new Map<string, string>()
      const nameOf = async (kind: 'user' | 'client', id: string) => {
        const key = `${kind}:${id}`
        if (!names.has(key)) {
          const found =
            kind === 'user'
              ? (await deps.users.findById(id))?.email
              : (await deps.clients.get(id))?.name
          names.set(key, found ?? id)
        }
        return names.get(key) as string
      }
      const approvals: ApprovalView[] = []
      for (const r of requests) {
        approvals.push({
          id: r.id,
          status: r.status,
          person: await nameOf('user', r.userId),
          client: await nameOf('client', r.clientId),
          bindingMessage: r.bindingMessage,
          createdAt: new Date(r.createdAt).toISOString(),
          expiresAt: new Date(r.expiresAt).toISOString(),
        })
      }
      return html(c, approvalsListPage({ approvals, status: status ?? 'all' }))
    }),
  )

  const view = async (id: string): Promise<ApprovalDetailView> => {
    const a = await showApproval(deps, id)
    const client = await deps.clients.get(a.client_id)
    return {
      id: a.id,
      status: a.status,
      client: { id: a.client_id, name: client?.name ?? a.client_id },
      person: { id: a.user_id, email: a.user_email },
      resource: a.resource,
      scopes: a.scopes,
      bindingMessage: a.binding_message,
      details: a.authorization_details.map((detail, i) => ({
        sentence: a.details_in_words[i] ?? '',
        json: JSON.stringify(detail, null, 2),
      })),
      deliveryMode: a.delivery_mode,
      createdAt: a.created_at,
      expiresAt: a.expires_at,
      decidedAt: a.decided_at,
      decidedBy: a.decided_by ? (a.decided_by.label ?? a.decided_by.id) : null,
      consumedAt: a.consumed_at,
    }
  }

  app.get(
    '/admin/approvals/:id',
    consoleView(deps, async (c, admin) => {
      let approval: ApprovalDetailView
      try {
        approval = await view(c.req.param('id') ?? '')
      } catch (err) {
        if (isDeputyError(err) && err.code === 'ERR_NOT_FOUND') return c.notFound()
        throw err
      }
      return html(
        c,
        approvalPage({
          approval,
          csrfToken: admin.session.csrfToken,
          notice: NOTICES[c.req.query('done') ?? ''],
        }),
      )
    }),
  )

  const back = (c: Context<AppEnv>) => approvalPath(c.req.param('id') ?? '')
  for (const [verb, decision] of [
    ['approve', 'approved'],
    ['deny', 'denied'],
  ] as const) {
    app.post(
      `/admin/approvals/:id/${verb}`,
      consoleAction(deps, back, async (c, admin) => {
        const id = c.req.param('id') ?? ''
        if (id.length === 0) throw new DeputyError('ERR_NOT_FOUND', 'no approval request')
        const decided = await decideAsOperator(deps, {
          id,
          decision,
          actor: admin.actor,
          requestId: admin.requestId,
        })
        return done(c, approvalPath(decided.id, `?done=${decision}`))
      }),
    )
  }
}
