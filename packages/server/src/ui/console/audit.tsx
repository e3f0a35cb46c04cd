import { AuditItem, type AuditLine } from './dashboard.js'
import { ConsoleLayout, consolePage } from './layout.js'

/** The filter as typed (echoed back into the form; `from`/`to` as datetime-local values, UTC). */
export interface AuditFilterForm {
  person: string
  agent: string
  type: string
  from: string
  to: string
  refusals: boolean
}

export interface AuditPageProps {
  filter: AuditFilterForm
  lines: AuditLine[]
  /** The query string of the next (older) page, when there is one. */
  olderQuery?: string
  /** The filter's query string, for the export link. */
  query: string
  /** A filter value that could not be used, in one line. */
  problem?: string
  /** The chain check, when asked for. */
  verification?: { ok: boolean; records: number; head?: number; problem?: string }
}

/** The audit timeline: filter, read, verify the chain, export what the filter shows. */
export function auditPage(props: AuditPageProps): string {
  const f = props.filter
  const v = props.verification
  return consolePage(
    <ConsoleLayout title="Audit log" section="audit">
      <form method="get" action="/admin/audit" class="filters" aria-label="Filter the audit log">
        <div class="field">
          <label for="person">Person (email or id)</label>
          <input id="person" type="text" name="person" value={f.person} />
        </div>
        <div class="field">
          <label for="agent">Agent (client id)</label>
          <input id="agent" type="text" name="agent" value={f.agent} />
        </div>
        <div class="field">
          <label for="type">Event type</label>
          <input id="type" type="text" name="type" value={f.type} placeholder="token.issued" />
        </div>
        <div class="field">
          <label for="from">From (UTC)</label>
          <input id="from" type="datetime-local" name="from" value={f.from} />
        </div>
        <div class="field">
          <label for="to">Until (UTC)</label>
          <input id="to" type="datetime-local" name="to" value={f.to} />
        </div>
        <div class="field">
          <label class="check">
            <input type="checkbox" name="refusals" value="1" checked={f.refusals} />
            Only refusals
          </label>
          <button type="submit" class="secondary">
            Filter
          </button>
        </div>
      </form>
      {props.problem ? (
        <p class="alert error" role="alert">
          {props.problem}
        </p>
      ) : null}
      <section aria-labelledby="chain">
        <h2 id="chain">Chain</h2>
        {v ? (
          v.ok ? (
            <p class="alert notice" role="status">
              The chain is intact: {v.records} records
              {v.head ? `, the newest is #${v.head}` : ''}.
            </p>
          ) : (
            <p class="alert error" role="alert">
              The chain is broken: {v.problem}. {v.records} records before it are intact.
            </p>
          )
        ) : (
          <p class="muted">Checking reads every record, so it runs when you ask.</p>
        )}
        <div class="actions">
          <a
            class="button inline"
            href={`/admin/audit?${props.query}${props.query ? '&' : ''}verify=1`}
          >
            Verify the chain
          </a>
          <a class="button inline" href={`/admin/audit/export?${props.query}`} download>
            Export these records (JSON lines)
          </a>
        </div>
      </section>
      <h2>Records</h2>
      {props.lines.length === 0 ? (
        <p class="muted">No record matches.</p>
      ) : (
        <ul class="rows" aria-label="Audit records">
          {props.lines.map((line) => (
            <AuditItem line={line} />
          ))}
        </ul>
      )}
      {props.olderQuery ? (
        <p>
          <a href={`/admin/audit?${props.olderQuery}`}>Older records</a>
        </p>
      ) : null}
    </ConsoleLayout>,
  )
}
