import { ConsoleLayout, consolePage, Time } from './layout.js'

/** An approval request as the console lists it. */
export interface ApprovalView {
  id: string
  status: string
  person: string
  client: string
  bindingMessage: string | null
  createdAt: string
  expiresAt: string
}

/** Approvals: the requests agents made of people, newest first, each linking to its page. */
export function approvalsListPage(props: { approvals: ApprovalView[]; status: string }): string {
  const tabs = ['pending', 'approved', 'denied', 'expired', 'all']
  return consolePage(
    <ConsoleLayout title="Approvals" section="approvals">
      <nav aria-label="Which approvals">
        <ul class="actions">
          {tabs.map((t) => (
            <li>
              <a
                href={`/admin/approvals?status=${t}`}
                aria-current={t === props.status ? 'page' : undefined}
              >
                {t}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {props.approvals.length === 0 ? (
        <p class="muted">No {props.status === 'all' ? '' : `${props.status} `}approval requests.</p>
      ) : (
        <ul class="rows" aria-label="Approval requests">
          {props.approvals.map((a) => (
            <li>
              <a href={`/admin/approvals/${encodeURIComponent(a.id)}`}>
                {a.client} asks {a.person}
              </a>{' '}
              <span class="muted">({a.status})</span>
              <p class="muted">
                <Time iso={a.createdAt} />, expires <Time iso={a.expiresAt} />
                {a.bindingMessage ? ` · “${a.bindingMessage}”` : ''}
              </p>
            </li>
          ))}
        </ul>
      )}
    </ConsoleLayout>,
  )
}
