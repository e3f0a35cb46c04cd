import { ConsoleLayout, consolePage, Time } from './layout.js'

/** A record of the audit log as the console lists it (plain data). */
export interface AuditLine {
  seq: number
  time: string
  type: string
  actor: string
  onBehalfOf: string | null
  target: string | null
  decision: string | null
  reason: string | null
}

export interface DashboardProps {
  people: number
  clients: number
  tokensIssued: number
  /** Pending approvals; `more` when there are more than counted. */
  pendingApprovals: { count: number; more: boolean }
  refusals: AuditLine[]
}

/** One audit record as a list item: what happened, who did it, to what, and why. */
export function AuditItem(props: { line: AuditLine }) {
  const l = props.line
  return (
    <li>
      <strong>{l.type}</strong> <span class="muted">#{l.seq}</span> · <Time iso={l.time} />
      <p>
        by {l.actor}
        {l.onBehalfOf ? ` for ${l.onBehalfOf}` : ''}
        {l.target ? ` · on ${l.target}` : ''}
      </p>
      {l.decision || l.reason ? (
        <p class="muted">{[l.decision, l.reason].filter(Boolean).join(': ')}</p>
      ) : null}
    </li>
  )
}

/** The console's first page: how many of each thing there are, and what was refused lately. */
export function dashboardPage(props: DashboardProps): string {
  const stats = [
    { href: '/admin/people', n: String(props.people), label: 'people' },
    { href: '/admin/clients', n: String(props.clients), label: 'agents and clients' },
    {
      href: '/admin/audit?type=token.issued',
      n: String(props.tokensIssued),
      label: 'tokens issued',
    },
    {
      href: '/admin/approvals',
      n: `${props.pendingApprovals.count}${props.pendingApprovals.more ? '+' : ''}`,
      label: 'pending approvals',
    },
  ]
  return consolePage(
    <ConsoleLayout title="Dashboard" section="dashboard">
      <ul class="stats">
        {stats.map((s) => (
          <li>
            <a href={s.href}>
              <strong>{s.n}</strong> {s.label}
            </a>
          </li>
        ))}
      </ul>
      <h2>Recent refusals</h2>
      {props.refusals.length === 0 ? (
        <p class="muted">Nothing has been refused yet.</p>
      ) : (
        <>
          <ul class="rows">
            {props.refusals.map((line) => (
              <AuditItem line={line} />
            ))}
          </ul>
          <p>
            <a href="/admin/audit?refusals=1">All refusals in the audit log</a>
          </p>
        </>
      )}
    </ConsoleLayout>,
  )
}
