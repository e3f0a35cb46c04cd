import type { DiffLine } from '../../lib/line-diff.js'
import { POLICY_EDITOR_SCRIPT_PATH } from '../assets.js'
import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** A policy in the list: its newest version, which for a removed policy is the removal. */
export interface PolicySummary {
  id: string
  version: number
  changedAt: string
  removed: boolean
  description: string | null
}

/** A problem in a policy text, where it is (1-based line and column). */
export interface ProblemView {
  policyId?: string | undefined
  line: number
  column: number
  message: string
  help?: string | undefined
}

/** A policy as its page shows it; `removed` policies show their last text, to restore. */
export interface PolicyView {
  id: string
  version: number
  setVersion: number
  removed: boolean
  effect: 'permit' | 'forbid' | null
  description: string | null
  text: string
  changedAt: string
  changedBy: string
}

/** One version in a policy's history. */
export interface VersionView {
  version: number
  setVersion: number
  removed: boolean
  createdAt: string
  createdBy: string
}

/** The most characters a policy text may have (the admin API's limit). */
export const MAX_POLICY_TEXT = 60_000

/** Where a policy's pages are. */
export function policyHref(id: string, rest = ''): string {
  return `/admin/policies/${encodeURIComponent(id)}${rest}`
}

/** `Line 7, column 8: <message> (<help>)`, as the editor script writes it too. */
export function problemSentence(p: ProblemView): string {
  const help = p.help ? ` (${p.help})` : ''
  const policy = p.policyId ? `policy ${p.policyId}, ` : ''
  return `Line ${p.line}, column ${p.column}: ${policy}${p.message}${help}`
}

/**
 * The Cedar text in a textarea, and under it the problems (a live region the editor script fills
 * as one types, and the server fills after a refused save). Saving checks the text either way.
 */
function PolicyEditor(props: {
  action: string
  csrfToken: string
  text: string
  problems: readonly ProblemView[]
  policyId?: string
  /** The new-policy form asks for an id, for a text without `@id("…")`. */
  idField?: string
  submit: string
}) {
  const invalid = props.problems.length > 0
  return (
    <form
      method="post"
      action={props.action}
      data-validate="/admin/policy/validate"
      data-problems="policy-problems"
      data-policy-id={props.policyId}
    >
      <Csrf token={props.csrfToken} />
      {props.idField !== undefined ? (
        <div class="field">
          <label for="policy-id">Id (when the text has no @id("…") annotation)</label>
          <input
            id="policy-id"
            type="text"
            name="id"
            value={props.idField}
            autocomplete="off"
            spellcheck={false}
          />
        </div>
      ) : null}
      <div class="field">
        <label for="policy-text">Cedar policy</label>
        <textarea
          id="policy-text"
          name="text"
          rows={16}
          required
          maxlength={MAX_POLICY_TEXT}
          spellcheck={false}
          autocapitalize="off"
          aria-describedby="policy-problems"
          aria-invalid={invalid ? 'true' : undefined}
        >
          {props.text}
        </textarea>
      </div>
      <div id="policy-problems" aria-live="polite">
        <p data-check class={invalid ? 'alert error' : 'muted'}>
          {invalid
            ? `Not saved: ${props.problems.length === 1 ? '1 problem' : `${props.problems.length} problems`}:`
            : ''}
        </p>
        <ul class="rows" aria-label="Problems" hidden={!invalid}>
          {props.problems.map((p) => (
            <li>{problemSentence(p)}</li>
          ))}
        </ul>
      </div>
      <button type="submit">{props.submit}</button>
    </form>
  )
}

/** Policies: every policy with its newest version, and a form for a new one. */
export function policiesPage(props: {
  policies: PolicySummary[]
  setVersion: number
  csrfToken: string
  notice?: string
  /** A refused new policy: the text as typed, and why. */
  draft?: { text: string; id: string; problems: readonly ProblemView[] }
}): string {
  return consolePage(
    <ConsoleLayout
      title="Policies"
      section="policies"
      notice={props.notice}
      script={POLICY_EDITOR_SCRIPT_PATH}
    >
      <p>
        Cedar policies decide what an agent may do for a person. Policy set version{' '}
        {props.setVersion}. <a href="/admin/policy/simulate">What may an agent do?</a> ·{' '}
        <a href="/admin/policy/explain">Explain a decision</a>
      </p>
      {props.policies.length === 0 ? (
        <p class="muted">No policy exists yet: Deputy denies what no policy permits.</p>
      ) : (
        <ul class="rows" aria-label="Policies">
          {props.policies.map((p) => (
            <li>
              <a href={policyHref(p.id)}>{p.id}</a> <span class="muted">version {p.version}</span>
              {p.removed ? <span class="badge">removed</span> : null}
              <p class="muted">
                {p.description ? `${p.description} · ` : ''}changed <Time iso={p.changedAt} />
              </p>
            </li>
          ))}
        </ul>
      )}
      <h2 id="new">New policy</h2>
      <p class="muted">
        One or more statements, each named by an <code>@id("…")</code> annotation, e.g.{' '}
        <code>
          @id("staff-read") permit (principal, action == Deputy::Action::"read", resource);
        </code>
      </p>
      <PolicyEditor
        action="/admin/policies"
        csrfToken={props.csrfToken}
        text={props.draft?.text ?? ''}
        problems={props.draft?.problems ?? []}
        idField={props.draft?.id ?? ''}
        submit="Add policy"
      />
    </ConsoleLayout>,
  )
}

/** One policy: its text in the editor, Save, and the way to its history and removal. */
export function policyPage(props: {
  policy: PolicyView
  csrfToken: string
  notice?: string
  /** A refused save: the text as typed, and why. */
  draft?: { text: string; problems: readonly ProblemView[] }
}): string {
  const p = props.policy
  return consolePage(
    <ConsoleLayout
      title={`Policy ${p.id}`}
      section="policies"
      notice={props.notice}
      script={POLICY_EDITOR_SCRIPT_PATH}
    >
      {p.removed ? (
        <p class="alert error">
          Removed in version {p.version} (<Time iso={p.changedAt} />, by {p.changedBy}): it decides
          nothing. Saving the text below restores it as a new version.
        </p>
      ) : null}
      <dl>
        <dt>Version</dt>
        <dd>
          {p.version} (policy set version {p.setVersion})
        </dd>
        {p.effect ? (
          <>
            <dt>Effect</dt>
            <dd>{p.effect}</dd>
          </>
        ) : null}
        {p.description ? (
          <>
            <dt>Description</dt>
            <dd>{p.description}</dd>
          </>
        ) : null}
        <dt>Changed</dt>
        <dd>
          <Time iso={p.changedAt} /> by {p.changedBy}
        </dd>
      </dl>
      <PolicyEditor
        action={policyHref(p.id)}
        csrfToken={props.csrfToken}
        text={props.draft?.text ?? p.text}
        problems={props.draft?.problems ?? []}
        policyId={p.id}
        submit={p.removed ? 'Restore policy' : 'Save policy'}
      />
      <div class="actions">
        <a class="button inline" href={policyHref(p.id, '/history')}>
          History
        </a>
        {p.removed ? null : (
          <a class="button inline" href={policyHref(p.id, '/remove')}>
            Remove…
          </a>
        )}
      </div>
      <p>
        <a href={`/admin/audit?type=policy.written`}>Policy changes in the audit log</a> ·{' '}
        <a href="/admin/policies">All policies</a>
      </p>
    </ConsoleLayout>,
  )
}

/** Asks before a policy is removed: nothing changes until this form is sent. */
export function removePolicyPage(props: { id: string; csrfToken: string }): string {
  return consolePage(
    <ConsoleLayout title={`Remove policy ${props.id}?`} section="policies">
      <p>
        Removing <strong>{props.id}</strong> takes it out of the policy set at once: it no longer
        permits or forbids anything. Its history stays, and saving its text again restores it.
      </p>
      <div class="actions">
        <form method="post" action={policyHref(props.id, '/remove')}>
          <Csrf token={props.csrfToken} />
          <input type="hidden" name="confirm" value="remove" />
          <button type="submit" class="danger inline">
            Remove {props.id}
          </button>
        </form>
        <a class="button inline" href={policyHref(props.id)}>
          Keep it
        </a>
      </div>
    </ConsoleLayout>,
  )
}

/** A policy's versions, newest first, each linking to its text and its diff. */
export function policyHistoryPage(props: { id: string; versions: VersionView[] }): string {
  return consolePage(
    <ConsoleLayout title={`History of ${props.id}`} section="policies">
      <ul class="rows" aria-label="Versions">
        {[...props.versions].reverse().map((v) => (
          <li>
            <a href={policyHref(props.id, `/versions/${v.version}`)}>Version {v.version}</a>
            {v.removed ? <span class="badge">removed</span> : null}
            <p class="muted">
              policy set version {v.setVersion} · <Time iso={v.createdAt} /> by {v.createdBy}
            </p>
          </li>
        ))}
      </ul>
      <p>
        <a href={policyHref(props.id)}>The policy</a> · <a href="/admin/policies">All policies</a>
      </p>
    </ConsoleLayout>,
  )
}

/** One version: its text, and what changed from the version before it, line by line. */
export function policyVersionPage(props: {
  id: string
  version: VersionView
  text: string | null
  diff: DiffLine[]
  previous: number | null
  next: number | null
}): string {
  const v = props.version
  const added = props.diff.filter((l) => l.kind === 'added').length
  const removed = props.diff.filter((l) => l.kind === 'removed').length
  return consolePage(
    <ConsoleLayout title={`${props.id}, version ${v.version}`} section="policies">
      <p class="muted">
        policy set version {v.setVersion} · <Time iso={v.createdAt} /> by {v.createdBy}
      </p>
      <h2>Text</h2>
      {props.text === null ? (
        <p>This version removed the policy.</p>
      ) : (
        <section aria-label={`Text of version ${v.version}`}>
          <pre tabindex={0}>
            <code>{props.text}</code>
          </pre>
        </section>
      )}
      <h2>
        {props.previous === null
          ? 'Changes (the first version: every line is new)'
          : `Changes from version ${props.previous}`}
      </h2>
      <p>
        {added} {added === 1 ? 'line' : 'lines'} added (marked +), {removed}{' '}
        {removed === 1 ? 'line' : 'lines'} removed (marked −).
      </p>
      <section aria-label="Line changes">
        <pre class="diff" tabindex={0}>
          <code>
            {props.diff.map((line) =>
              line.kind === 'added' ? (
                <ins>{`+ ${line.text}\n`}</ins>
              ) : line.kind === 'removed' ? (
                <del>{`− ${line.text}\n`}</del>
              ) : (
                `  ${line.text}\n`
              ),
            )}
          </code>
        </pre>
      </section>
      <p>
        {props.previous === null ? null : (
          <>
            <a href={policyHref(props.id, `/versions/${props.previous}`)}>
              Version {props.previous}
            </a>{' '}
            ·{' '}
          </>
        )}
        {props.next === null ? null : (
          <>
            <a href={policyHref(props.id, `/versions/${props.next}`)}>Version {props.next}</a> ·{' '}
          </>
        )}
        <a href={policyHref(props.id, '/history')}>History</a> ·{' '}
        <a href={policyHref(props.id)}>The policy</a>
      </p>
    </ConsoleLayout>,
  )
}
