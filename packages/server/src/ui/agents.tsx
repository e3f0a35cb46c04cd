import { Layout, renderPage } from './layout.js'
import { PersonNav } from './person-nav.js'

/** A scope with the sentence the consent page shows (or showed) for it. */
export interface ScopeLine {
  scope: string
  sentence: string
}

/** One agent on the page: the client and what it holds, per resource. */
export interface AgentEntry {
  clientId: string
  clientName: string
  resources: {
    uri: string
    name: string
    /** The scopes in force, with what the consent page says for each today. */
    scopes: ScopeLine[]
    /** ISO time of the oldest grant still in force for this resource. */
    since: string
    /** ISO times the agent first and last got tokens under these grants; null if never. */
    firstUsedAt: string | null
    lastUsedAt: string | null
    /** The sentences the person was shown when they agreed (empty when not recorded). */
    agreed: ScopeLine[]
    /** When the oldest grant with recorded sentences was made. */
    agreedAt: string | null
  }[]
}

export interface AgentsPageProps {
  agents: AgentEntry[]
  csrfToken: string
  /** The agent just revoked, for the notice at the top. */
  revokedName?: string
}

function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

function Time(props: { iso: string }) {
  return <time datetime={props.iso}>{formatTime(props.iso)}</time>
}

type ResourceEntry = AgentEntry['resources'][number]

function Use(props: { r: ResourceEntry }) {
  const { r } = props
  if (!r.firstUsedAt || !r.lastUsedAt) return <p class="muted">Not used yet.</p>
  return (
    <p class="muted">
      First used <Time iso={r.firstUsedAt} /> · last used <Time iso={r.lastUsedAt} />
    </p>
  )
}

function AgentResource(props: { r: ResourceEntry; clientName: string }) {
  const { r } = props
  return (
    <div class="agent-resource">
      <p>
        <strong>{r.name}</strong> <span class="muted">({r.uri})</span>, since <Time iso={r.since} />
      </p>
      <Use r={r} />
      {r.scopes.length > 0 ? (
        <ul class="scopes">
          {r.scopes.map((s) => (
            <li>
              {s.sentence} <span class="muted">({s.scope})</span>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">Basic access, no specific permissions.</p>
      )}
      {r.agreed.length > 0 && r.agreedAt ? (
        <blockquote class="agreed">
          <p class="muted">
            What you agreed to on <Time iso={r.agreedAt} />: allow {props.clientName} to
          </p>
          <ul>
            {r.agreed.map((s) => (
              <li>{s.sentence}</li>
            ))}
          </ul>
        </blockquote>
      ) : null}
    </div>
  )
}

/** "Your agents": which agents hold grants for the signed-in person, and a way to end each one. */
export function AgentsPage(props: AgentsPageProps) {
  return (
    <Layout title="Your agents" nav={<PersonNav current="agents" />}>
      <h1>Your agents</h1>
      {props.revokedName ? (
        <p class="alert notice" role="status">
          {props.revokedName} no longer has access.
        </p>
      ) : null}
      {props.agents.length === 0 ? (
        <p class="muted">No agent has access for you.</p>
      ) : (
        props.agents.map((agent) => (
          <section class="agent" aria-labelledby={`agent-${agent.clientId}`}>
            <h2 id={`agent-${agent.clientId}`}>{agent.clientName}</h2>
            <p class="muted">{agent.clientId}</p>
            {agent.resources.map((r) => (
              <AgentResource r={r} clientName={agent.clientName} />
            ))}
            <form method="post" action="/account/agents/revoke">
              <input type="hidden" name="csrf_token" value={props.csrfToken} />
              <input type="hidden" name="client_id" value={agent.clientId} />
              <button type="submit" class="secondary">
                {`Revoke ${agent.clientName}`}
              </button>
            </form>
          </section>
        ))
      )}
    </Layout>
  )
}

/** The agents page as a complete HTML document. */
export function agentsPage(props: AgentsPageProps): string {
  return renderPage(<AgentsPage {...props} />)
}
