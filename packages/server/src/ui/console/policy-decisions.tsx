import { ConsoleLayout, consolePage } from './layout.js'
import { policyHref } from './policies.js'

/** A choice in a picker: the value sent, and what the operator reads. */
export interface Choice {
  value: string
  label: string
}

/** A decision as the pages show it (the engine's, in plain data). */
export interface DecisionView {
  decision: 'allow' | 'deny' | 'needs_approval' | 'depends_on_arguments'
  explanation: string
  /** The policies that determined it. */
  policies: readonly string[]
  errors: readonly { policyId: string; message: string }[]
}

/** One row of "what may agent X do for person Y". */
export interface SimulatedView extends DecisionView {
  action: string
  resource: string | null
}

const OUTCOME: Record<DecisionView['decision'], string> = {
  allow: 'Allowed',
  deny: 'Denied',
  needs_approval: 'Needs approval',
  depends_on_arguments: 'Depends on the arguments',
}

function Picker(props: {
  id: string
  name: string
  label: string
  choices: readonly Choice[]
  selected: string
  /** The first choice, sending nothing (e.g. "No agent"). */
  none?: string
  required?: boolean
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} name={props.name} required={props.required}>
        {props.none === undefined ? null : (
          <option value="" selected={props.selected === ''}>
            {props.none}
          </option>
        )}
        {props.choices.map((c) => (
          <option value={c.value} selected={c.value === props.selected}>
            {c.label}
          </option>
        ))}
      </select>
    </div>
  )
}

function Deciding(props: { decision: DecisionView }) {
  const d = props.decision
  return (
    <>
      <p>
        <strong>{OUTCOME[d.decision]}.</strong> {d.explanation}
      </p>
      {d.policies.length > 0 ? (
        <p>
          Determined by:{' '}
          {d.policies.map((id, i) => (
            <>
              {i > 0 ? ', ' : ''}
              <a href={policyHref(id)}>{id}</a>
            </>
          ))}
        </p>
      ) : (
        <p class="muted">No policy determined it (Cedar denies what no policy permits).</p>
      )}
      {d.errors.length > 0 ? (
        <ul class="rows" aria-label="Policies that failed to evaluate">
          {d.errors.map((e) => (
            <li>
              <a href={policyHref(e.policyId)}>{e.policyId}</a> could not be evaluated: {e.message}
            </li>
          ))}
        </ul>
      ) : null}
    </>
  )
}

const LINKS = (
  <p>
    <a href="/admin/policy/simulate">What may an agent do?</a> ·{' '}
    <a href="/admin/policy/explain">Explain a decision</a> ·{' '}
    <a href="/admin/policies">All policies</a>
  </p>
)

/** "What may agent X do for person Y": the form, and every declared tool decided. */
export function simulatePage(props: {
  people: readonly Choice[]
  clients: readonly Choice[]
  servers: readonly Choice[]
  asked: { person: string; client: string; resource: string }
  /** The rows, once asked. */
  rows?: readonly SimulatedView[]
  setVersion?: number
  problem?: string
}): string {
  const a = props.asked
  return consolePage(
    <ConsoleLayout title="What may an agent do?" section="policies">
      <p>
        Every tool the servers declare, decided for a person and an agent with what is known before
        a call: the scopes the person consented to and their stored state. Nothing is recorded and
        nothing is allowed by asking.
      </p>
      <form method="get" action="/admin/policy/simulate" class="filters">
        <Picker
          id="sim-person"
          name="person"
          label="Person"
          choices={props.people}
          selected={a.person}
          required
        />
        <Picker
          id="sim-client"
          name="client"
          label="Agent"
          choices={props.clients}
          selected={a.client}
          none="No agent (the person themself)"
        />
        <Picker
          id="sim-resource"
          name="resource"
          label="Server (optional)"
          choices={props.servers}
          selected={a.resource}
          none="Every server"
        />
        <div class="field">
          <button type="submit">Simulate</button>
        </div>
      </form>
      {props.problem ? <p class="alert error">{props.problem}</p> : null}
      {props.rows === undefined ? null : (
        <>
          <h2>Decisions (policy set version {props.setVersion})</h2>
          {props.rows.length === 0 ? (
            <p class="muted">No tool is declared{a.resource ? ' on this server' : ''}.</p>
          ) : (
            <ul class="rows" aria-label="Decisions">
              {props.rows.map((row) => (
                <li>
                  <code>{row.action}</code>
                  <Deciding decision={row} />
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      {LINKS}
    </ConsoleLayout>,
  )
}

/** What an explain form was filled with, kept when the page answers. */
export interface ExplainAsked {
  person: string
  client: string
  action: string
  resource: string
  scopes: string
  arguments: string
  state: string
  approved: boolean
}

/** "Explain a decision": one request's inputs, its decision and the policies that made it. */
export function explainPage(props: {
  people: readonly Choice[]
  clients: readonly Choice[]
  actions: readonly Choice[]
  asked: ExplainAsked
  decision?: DecisionView & { setVersion: number }
  problem?: string
}): string {
  const a = props.asked
  return consolePage(
    <ConsoleLayout title="Explain a decision" section="policies">
      <p>
        The inputs of one request: who asks, through which agent, to do what, with which scopes,
        arguments and state. Deputy decides it as it would a real call, and records nothing.
      </p>
      <form method="get" action="/admin/policy/explain">
        <Picker
          id="ex-person"
          name="person"
          label="Person (principal)"
          choices={props.people}
          selected={a.person}
          required
        />
        <Picker
          id="ex-client"
          name="client"
          label="Agent"
          choices={props.clients}
          selected={a.client}
          none="No agent (the person themself)"
        />
        <Picker
          id="ex-action"
          name="action"
          label="Action"
          choices={props.actions}
          selected={a.action}
          required
        />
        <div class="field">
          <label for="ex-resource">
            Resource (optional: a server's URL, or doc:id / folder:id for read)
          </label>
          <input id="ex-resource" type="text" name="resource" value={a.resource} />
        </div>
        <div class="field">
          <label for="ex-scopes">Scopes of the token (separated by spaces)</label>
          <input id="ex-scopes" type="text" name="scopes" value={a.scopes} />
        </div>
        <div class="field">
          <label for="ex-arguments">Arguments (JSON, optional)</label>
          <textarea id="ex-arguments" name="arguments" spellcheck={false}>
            {a.arguments}
          </textarea>
        </div>
        <div class="field">
          <label for="ex-state">The person's state (a JSON object, optional)</label>
          <textarea id="ex-state" name="state" spellcheck={false}>
            {a.state}
          </textarea>
        </div>
        <label class="check">
          <input type="checkbox" name="approved" value="1" checked={a.approved} />
          The person approved this call
        </label>
        <div class="actions">
          <button type="submit" class="inline">
            Explain
          </button>
        </div>
      </form>
      {props.problem ? <p class="alert error">{props.problem}</p> : null}
      {props.decision ? (
        <section aria-labelledby="decision">
          <h2 id="decision">Decision (policy set version {props.decision.setVersion})</h2>
          <Deciding decision={props.decision} />
        </section>
      ) : null}
      {LINKS}
    </ConsoleLayout>,
  )
}
