import { INBOX_SCRIPT_PATH } from './assets.js'
import { Layout, renderPage } from './layout.js'
import { PersonNav } from './person-nav.js'

/** An approval request as the person's pages show it (built by approvals/shown.ts). */
export interface ApprovalView {
  id: string
  clientName: string
  clientId: string
  personEmail: string
  resourceName: string
  resourceUri: string
  scopes: { scope: string; sentence: string }[]
  bindingMessage: string | null
  details: { sentence: string; json: string; highRisk: boolean }[]
  /** ISO times. */
  createdAt: string
  expiresAt: string
  highRisk: boolean
  status: 'pending' | 'approved' | 'denied' | 'expired'
  decidedAt: string | null
}

function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

const STATUS_WORDS: Record<ApprovalView['status'], string> = {
  pending: 'Waiting for you',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
}

/** Which agent, for whom, the binding message, the details in words (JSON on demand), the expiry. */
function RequestSummary(props: { approval: ApprovalView }) {
  const a = props.approval
  return (
    <>
      <p>
        <strong>{a.clientName}</strong> asks for <strong>{a.resourceName}</strong>{' '}
        <span class="muted">({a.resourceUri})</span> as {a.personEmail}.
      </p>
      {a.bindingMessage ? (
        <p class="binding">
          <span class="muted">It shows the code</span> <strong>{a.bindingMessage}</strong>
        </p>
      ) : null}
      {a.details.length > 0 ? (
        <ul class="scopes">
          {a.details.map((d) => (
            <li>
              {d.sentence}
              {d.highRisk ? <span class="badge">high risk</span> : null}
              <details>
                <summary class="muted">as sent</summary>
                <pre>{d.json}</pre>
              </details>
            </li>
          ))}
        </ul>
      ) : null}
      {a.scopes.length > 0 ? (
        <ul class="scopes">
          {a.scopes.map((s) => (
            <li>
              {s.sentence} <span class="muted">({s.scope})</span>
            </li>
          ))}
        </ul>
      ) : null}
    </>
  )
}

export interface InboxPageProps {
  pending: ApprovalView[]
  history: ApprovalView[]
}

/**
 * The approvals inbox: the person's pending requests, newest first, and the decided ones. The
 * script keeps it live (server-sent events); without it, the reload link does the same.
 */
export function InboxPage(props: InboxPageProps) {
  return (
    <Layout title="Approvals" script={INBOX_SCRIPT_PATH} nav={<PersonNav current="approvals" />}>
      <h1>Approvals</h1>
      <p class="muted" id="live-status" role="status">
        <a href="/approvals">Reload</a> to see new requests.
      </p>
      <section id="pending" aria-label="Waiting for you">
        {props.pending.length === 0 ? (
          <p class="muted">No request is waiting for you.</p>
        ) : (
          <ul class="approvals">
            {props.pending.map((a) => (
              <li data-approval={a.id}>
                <a href={`/approvals/${a.id}`}>
                  <strong>{a.clientName}</strong>
                  {a.bindingMessage ? ` · ${a.bindingMessage}` : ''}
                </a>
                <p>
                  {a.details.length > 0
                    ? a.details.map((d) => d.sentence).join('; ')
                    : `Access to ${a.resourceName}`}
                  {a.highRisk ? <span class="badge">high risk</span> : null}
                </p>
                <p class="muted">
                  Expires <time datetime={a.expiresAt}>{formatTime(a.expiresAt)}</time>
                </p>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section id="history" aria-label="Decided">
        <h2>Decided</h2>
        {props.history.length === 0 ? (
          <p class="muted">Nothing decided yet.</p>
        ) : (
          <ul class="approvals">
            {props.history.map((a) => (
              <li data-approval={a.id}>
                <a href={`/approvals/${a.id}`}>
                  <strong>{a.clientName}</strong>
                  {a.bindingMessage ? ` · ${a.bindingMessage}` : ''}
                </a>
                <p class="muted">
                  {STATUS_WORDS[a.status]}
                  {a.decidedAt ? (
                    <>
                      {' '}
                      <time datetime={a.decidedAt}>{formatTime(a.decidedAt)}</time>
                    </>
                  ) : null}
                </p>
              </li>
            ))}
          </ul>
        )}
      </section>
    </Layout>
  )
}

/** The inbox as a complete HTML document. */
export function inboxPage(props: InboxPageProps): string {
  return renderPage(<InboxPage {...props} />)
}

export interface ApprovalPageProps {
  approval: ApprovalView
  /** The digest of what this page shows, posted back with the decision. */
  digest: string
  csrfToken: string
  /** A high-risk request whose Approve needs the password again first. */
  needsFreshSignIn: boolean
  freshSignInMinutes: number
  notice?: { kind: 'error' | 'notice'; text: string }
}

/** One request, with Approve and Deny while it waits; its outcome once decided. */
export function ApprovalPage(props: ApprovalPageProps) {
  const a = props.approval
  const pending = a.status === 'pending'
  return (
    <Layout
      title={`${a.clientName} asks for your approval`}
      script={INBOX_SCRIPT_PATH}
      nav={<PersonNav current="approvals" />}
    >
      <h1>{pending ? 'Approve this request?' : STATUS_WORDS[a.status]}</h1>
      {props.notice ? (
        <p
          class={`alert ${props.notice.kind}`}
          role={props.notice.kind === 'error' ? 'alert' : 'status'}
        >
          {props.notice.text}
        </p>
      ) : null}
      <div id="approval" data-approval={a.id} data-status={a.status}>
        <RequestSummary approval={a} />
      </div>
      {pending ? (
        <>
          <p class="muted">
            Expires <time datetime={a.expiresAt}>{formatTime(a.expiresAt)}</time>
          </p>
          {props.needsFreshSignIn ? (
            <p class="alert notice" role="status">
              This request is high risk: to approve it, enter your password again or use a passkey
              (you come back here, and Approve counts for {props.freshSignInMinutes} minutes after
              that).
            </p>
          ) : null}
          <form method="post" action={`/approvals/${a.id}`}>
            <input type="hidden" name="csrf_token" value={props.csrfToken} />
            <input type="hidden" name="shown_digest" value={props.digest} />
            <div class="field">
              <button type="submit" name="decision" value="approve">
                {props.needsFreshSignIn ? 'Enter your password to approve' : 'Approve'}
              </button>
            </div>
            <button type="submit" name="decision" value="deny" class="secondary">
              Deny
            </button>
          </form>
        </>
      ) : (
        <p class="muted">
          {a.decidedAt ? (
            <>
              Decided <time datetime={a.decidedAt}>{formatTime(a.decidedAt)}</time>
            </>
          ) : (
            <>
              Expired <time datetime={a.expiresAt}>{formatTime(a.expiresAt)}</time>
            </>
          )}
        </p>
      )}
      <p>
        <a href="/approvals">All your approvals</a>
      </p>
    </Layout>
  )
}

/** The request page as a complete HTML document. */
export function approvalPage(props: ApprovalPageProps): string {
  return renderPage(<ApprovalPage {...props} />)
}
