import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** One approval request as the console's page shows it (plain data). */
export interface ApprovalDetailView {
  id: string
  status: 'pending' | 'approved' | 'denied' | 'expired'
  client: { id: string; name: string }
  person: { id: string; email: string | null }
  resource: string
  scopes: string[]
  bindingMessage: string | null
  /** Each authorization detail (the bound tool call, a payment …): its sentence and its JSON. */
  details: { sentence: string; json: string }[]
  deliveryMode: 'poll' | 'ping'
  createdAt: string
  expiresAt: string
  decidedAt: string | null
  /** Who decided: the person, or the operator (their label). */
  decidedBy: string | null
  consumedAt: string | null
}

function approvalHref(id: string, rest = ''): string {
  return `/admin/approvals/${encodeURIComponent(id)}${rest}`
}

/** An approval request: who asks whom for what, and, while pending, the operator's decision. */
export function approvalPage(props: {
  approval: ApprovalDetailView
  csrfToken: string
  notice?: string
}): string {
  const a = props.approval
  const person = a.person.email ?? `${a.person.id} (removed)`
  return consolePage(
    <ConsoleLayout
      title={`${a.client.name} asks ${person}`}
      section="approvals"
      notice={props.notice}
    >
      <dl>
        <dt>Status</dt>
        <dd>{a.status}</dd>
        <dt>Agent</dt>
        <dd>
          <a href={`/admin/clients/${encodeURIComponent(a.client.id)}`}>{a.client.name}</a>{' '}
          <code>{a.client.id}</code>
        </dd>
        <dt>Person</dt>
        <dd>
          {a.person.email ? (
            <a href={`/admin/people/${encodeURIComponent(a.person.id)}`}>{a.person.email}</a>
          ) : (
            person
          )}
        </dd>
        <dt>Binding message</dt>
        <dd>{a.bindingMessage ?? 'none'}</dd>
        <dt>Resource</dt>
        <dd>
          <code>{a.resource}</code>
        </dd>
        <dt>Scopes</dt>
        <dd>{a.scopes.length > 0 ? a.scopes.join(' ') : 'none'}</dd>
        <dt>Delivery</dt>
        <dd>{a.deliveryMode}</dd>
        <dt>Asked</dt>
        <dd>
          <Time iso={a.createdAt} />
        </dd>
        <dt>Expires</dt>
        <dd>
          <Time iso={a.expiresAt} />
        </dd>
        {a.decidedAt ? (
          <>
            <dt>Decided</dt>
            <dd>
              <Time iso={a.decidedAt} /> by {a.decidedBy ?? 'unknown'}
            </dd>
          </>
        ) : null}
        {a.consumedAt ? (
          <>
            <dt>Token issued</dt>
            <dd>
              <Time iso={a.consumedAt} />
            </dd>
          </>
        ) : null}
      </dl>
      <h2>What it authorizes</h2>
      {a.details.length === 0 ? (
        <p class="muted">No authorization details: only the scopes above.</p>
      ) : (
        <ul class="rows" aria-label="Authorization details">
          {a.details.map((d) => (
            <li>
              <p>{d.sentence}</p>
              {/* Focusable: a long line scrolls sideways, and a keyboard must reach it too. */}
              <pre tabindex={0}>{d.json}</pre>
            </li>
          ))}
        </ul>
      )}
      {a.status === 'pending' ? (
        <section aria-labelledby="decide">
          <h2 id="decide">Decide for {person}</h2>
          <p>
            An operator may decide in the person's place, as <code>deputy approvals</code> does. The
            decision is recorded in the audit chain with you as actor before it is in force; the
            agent then gets its one token (approved) or a refusal (denied).
          </p>
          <div class="actions">
            <form method="post" action={approvalHref(a.id, '/deny')}>
              <Csrf token={props.csrfToken} />
              <button type="submit" class="danger inline">
                Deny
              </button>
            </form>
            <form method="post" action={approvalHref(a.id, '/approve')}>
              <Csrf token={props.csrfToken} />
              <button type="submit" class="secondary inline">
                Approve for {person}
              </button>
            </form>
          </div>
        </section>
      ) : null}
      <p>
        <a href={`/admin/audit?agent=${encodeURIComponent(a.client.id)}`}>
          The agent's audit trail
        </a>{' '}
        · <a href="/admin/approvals?status=all">All approvals</a>
      </p>
    </ConsoleLayout>,
  )
}
