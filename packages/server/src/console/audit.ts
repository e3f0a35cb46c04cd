import type { Context, Hono } from 'hono'
import { type AuditFilter, matchingAudit, searchAudit } from '../audit/query.js'
import type { Actor, AuditRecord } from '../audit/types.js'
import { verifyAuditChain } from '../audit/verify.js'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import type { Users } from '../identity/users.js'
import { hasNul } from '../lib/form.js'
import type { Store } from '../store/db.js'
import { type AuditFilterForm, auditPage } from '../ui/console/audit.js'
import type { AuditLine } from '../ui/console/dashboard.js'
import { consoleView, html } from './gate.js'

/** What the audit pages read: the chain itself and the people (to find one by email). */
export interface AuditConsoleDeps extends SessionDeps {
  store: Store
  users: Pick<Users, 'findByEmail' | 'findById'>
}

/** Records on one page of the timeline. */
const PAGE = 50
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/
const FIELDS = ['person', 'agent', 'type', 'from', 'to', 'refusals'] as const

function who(actor: Actor): string {
  return actor.label ? `${actor.label} (${actor.type})` : `${actor.type} ${actor.id}`
}

/** A record as one line of the list. */
export function auditLine(r: AuditRecord): AuditLine {
  return {
    seq: r.seq,
    time: r.time,
    type: r.type,
    actor: who(r.actor),
    onBehalfOf: r.onBehalfOf ? who(r.onBehalfOf) : null,
    target: r.target ? `${r.target.type} ${r.target.id}` : null,
    decision: r.decision,
    reason: r.reason,
  }
}

type Parsed = { form: AuditFilterForm; filter: AuditFilter; problem?: string; query: string }

/** Reads the filter from the query string; a value that cannot be used is named, not guessed. */
async function parseFilter(deps: AuditConsoleDeps, c: Context<AppEnv>): Promise<Parsed> {
  const raw = (name: string) => {
    const value = (c.req.query(name) ?? '').trim()
    return hasNul(value) ? '' : value.slice(0, 300)
  }
  const form: AuditFilterForm = {
    person: raw('person'),
    agent: raw('agent'),
    type: raw('type'),
    from: raw('from'),
    to: raw('to'),
    refusals: raw('refusals') === '1',
  }
  const filter: AuditFilter = {}
  const problems: string[] = []
  if (form.person) {
    // An email names a person by their account; anything else is taken as their id.
    const user = form.person.includes('@')
      ? await deps.users.findByEmail(form.person)
      : await deps.users.findById(form.person)
    if (user) filter.subjectIds = [user.id]
    else problems.push(`No person is ${form.person}.`)
  }
  if (form.agent) filter.alsoIds = [form.agent]
  if (form.type) filter.type = form.type
  for (const edge of ['from', 'to'] as const) {
    const value = form[edge]
    if (!value) continue
    if (LOCAL_TIME.test(value) && !Number.isNaN(Date.parse(`${value}:00Z`)))
      filter[edge] = new Date(`${value}:00Z`).toISOString()
    else problems.push(`${edge === 'from' ? 'From' : 'Until'} must be a date and time.`)
  }
  if (form.refusals) filter.refusals = true
  const params = new URLSearchParams()
  for (const name of FIELDS) {
    const value = name === 'refusals' ? (form.refusals ? '1' : '') : form[name]
    if (value) params.set(name, value)
  }
  return {
    form,
    filter,
    query: params.toString(),
    ...(problems.length > 0 && { problem: problems.join(' ') }),
  }
}

/** The audit timeline (issue 15 §1): filter, the chain's verification, export. */
export function registerAuditPages(app: Hono<AppEnv>, deps: AuditConsoleDeps): void {
  app.get(
    '/admin/audit',
    consoleView(deps, async (c) => {
      const parsed = await parseFilter(deps, c)
      const beforeRaw = Number(c.req.query('before'))
      const before = Number.isSafeInteger(beforeRaw) && beforeRaw > 0 ? beforeRaw : undefined
      const records = parsed.problem
        ? []
        : await searchAudit(deps.store, parsed.filter, {
            limit: PAGE + 1,
            ...(before !== undefined && { beforeSeq: before }),
          })
      const shown = records.slice(0, PAGE)
      const last = shown.at(-1)
      const olderQuery =
        records.length > PAGE && last
          ? `${parsed.query}${parsed.query ? '&' : ''}before=${last.seq}`
          : undefined
      let verification: Parameters<typeof auditPage>[0]['verification']
      if (c.req.query('verify') === '1') {
        const result = await verifyAuditChain(deps.store)
        verification = {
          ok: result.ok,
          records: result.records,
          ...(result.head && { head: result.head.seq }),
          ...(result.firstBad && { problem: result.firstBad.problem }),
        }
      }
      return html(
        c,
        auditPage({
          filter: parsed.form,
          lines: shown.map(auditLine),
          query: parsed.query,
          ...(olderQuery && { olderQuery }),
          ...(parsed.problem && { problem: parsed.problem }),
          ...(verification && { verification }),
        }),
      )
    }),
  )

  // The filtered records, newest first, one JSON record per line with its hashes (as
  // `deputy audit export` writes them), so a copy can be checked against the chain later.
  app.get(
    '/admin/audit/export',
    consoleView(deps, async (c) => {
      const parsed = await parseFilter(deps, c)
      if (parsed.problem)
        return html(
          c,
          auditPage({
            filter: parsed.form,
            query: parsed.query,
            problem: parsed.problem,
            lines: [],
          }),
          400,
        )
      const records = matchingAudit(deps.store, parsed.filter)
      const encoder = new TextEncoder()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await records.next()
          if (next.done) controller.close()
          else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`))
        },
        async cancel() {
          await records.return(undefined)
        },
      })
      return new Response(body, {
        status: 200,
        headers: {
          'Content-Type': 'application/x-ndjson; charset=utf-8',
          'Content-Disposition': 'attachment; filename="deputy-audit.jsonl"',
          'Cache-Control': 'no-store',
        },
      })
    }),
  )
}
