import { ConsoleLayout, Csrf, consolePage } from './layout.js'

/** The filter as typed, echoed back into the form. */
export interface TupleFilterView {
  object: string
  relation: string
  subject: string
}

export interface RelationshipsPageProps {
  filter: TupleFilterView
  /** The tuples of this page, each in the text form (`doc:readme#viewer@user:alice`). */
  tuples: string[]
  /** The query string of the next page, when there is one. */
  nextQuery?: string
  /** The filter's problem, one line; no tuples are shown then. */
  problem?: string
  csrfToken: string
  notice?: string
}

/** What a check page shows: the question, and the answer with the tuples that give it. */
export interface CheckView {
  question: TupleFilterView
  answer?: { allowed: boolean; path: string[] | null }
  problem?: string
}

function TupleFields(props: { prefix: string; values: TupleFilterView; required?: boolean }) {
  const { prefix, values } = props
  return (
    <>
      <div class="field">
        <label for={`${prefix}-object`}>
          Object (doc:readme{props.required ? '' : ', or doc'})
        </label>
        <input
          id={`${prefix}-object`}
          type="text"
          name="object"
          value={values.object}
          required={props.required}
          spellcheck={false}
        />
      </div>
      <div class="field">
        <label for={`${prefix}-relation`}>Relation (viewer)</label>
        <input
          id={`${prefix}-relation`}
          type="text"
          name="relation"
          value={values.relation}
          required={props.required}
          spellcheck={false}
        />
      </div>
      <div class="field">
        <label for={`${prefix}-subject`}>Subject (user:alice, group:eng#member, user:*)</label>
        <input
          id={`${prefix}-subject`}
          type="text"
          name="subject"
          value={values.subject}
          required={props.required}
          spellcheck={false}
        />
      </div>
    </>
  )
}

/** Relationships: the stored tuples, filtered and paged, with write, delete and check. */
export function relationshipsPage(props: RelationshipsPageProps): string {
  const empty = { object: '', relation: '', subject: '' }
  const filtered = Object.values(props.filter).some((v) => v !== '')
  return consolePage(
    <ConsoleLayout title="Relationships" section="relationships" notice={props.notice}>
      <p class="muted">
        Relationship tuples, <code>object#relation@subject</code>, as <code>deputy relations</code>{' '}
        writes them (docs/policies.md).
      </p>
      <form
        method="get"
        action="/admin/relationships"
        class="filters"
        aria-label="Filter the tuples"
      >
        <TupleFields prefix="filter" values={props.filter} />
        <div class="actions">
          <button type="submit" class="secondary inline">
            Filter
          </button>
        </div>
      </form>
      {props.problem ? (
        <p class="alert error" role="alert">
          {props.problem}
        </p>
      ) : null}
      <h2>Tuples</h2>
      {props.tuples.length === 0 ? (
        <p class="muted">{filtered ? 'No tuple matches.' : 'No tuple is stored yet.'}</p>
      ) : (
        <ul class="rows" aria-label="Tuples">
          {props.tuples.map((tuple) => (
            <li class="actions">
              <code>{tuple}</code>
              <form method="post" action="/admin/relationships/delete">
                <Csrf token={props.csrfToken} />
                <input type="hidden" name="tuple" value={tuple} />
                <button type="submit" class="secondary inline" aria-label={`Delete ${tuple}`}>
                  Delete
                </button>
              </form>
            </li>
          ))}
        </ul>
      )}
      {props.nextQuery ? (
        <p>
          <a href={`/admin/relationships?${props.nextQuery}`}>Next tuples</a>
        </p>
      ) : null}
      <h2 id="write">Write a tuple</h2>
      <form method="post" action="/admin/relationships" aria-labelledby="write">
        <Csrf token={props.csrfToken} />
        <TupleFields prefix="write" values={empty} required />
        <button type="submit">Write tuple</button>
      </form>
      <h2 id="check">Check</h2>
      <form method="get" action="/admin/relationships/check" aria-labelledby="check">
        <TupleFields prefix="check" values={empty} required />
        <button type="submit" class="secondary">
          Check
        </button>
      </form>
    </ConsoleLayout>,
  )
}

/** A check's answer: yes or no, and when yes the tuples the answer follows. */
export function checkPage(props: CheckView): string {
  const q = props.question
  const asked = `${q.subject} ${q.relation} ${q.object}`
  return consolePage(
    <ConsoleLayout title="Check a relationship" section="relationships">
      {props.problem ? (
        <p class="alert error" role="alert">
          {props.problem}
        </p>
      ) : props.answer?.allowed ? (
        <>
          <p class="alert notice" role="status">
            Yes: <code>{q.subject}</code> has <code>{q.relation}</code> on <code>{q.object}</code>.
          </p>
          {props.answer.path ? (
            <>
              <h2>Why</h2>
              <ol class="path" aria-label="Through these tuples">
                {props.answer.path.map((tuple) => (
                  <li>
                    <code>{tuple}</code>
                  </li>
                ))}
              </ol>
            </>
          ) : (
            <p class="muted">The path runs through more groups than the console follows.</p>
          )}
        </>
      ) : (
        <p class="alert error" role="status">
          No: <code>{q.subject}</code> does not have <code>{q.relation}</code> on{' '}
          <code>{q.object}</code>, directly or through any group.
        </p>
      )}
      <form method="get" action="/admin/relationships/check" aria-label={`Check again: ${asked}`}>
        <TupleFields prefix="check" values={q} required />
        <button type="submit" class="secondary">
          Check
        </button>
      </form>
      <p>
        <a href="/admin/relationships">All relationships</a>
      </p>
    </ConsoleLayout>,
  )
}
