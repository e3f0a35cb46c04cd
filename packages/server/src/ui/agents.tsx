import { Layout, renderPage } from './layout.js'

/** One agent on the page: the client and what it holds, per resource. */
export interface AgentEntry {
  clientId: string
  clientName: string
  resources: {
    uri: string
    name: string
    scopes: { scope: string; sentence: string }[]
    /** ISO time of the oldest grant still in force for this resource. */
    since: string
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

/** "Your agents": which agents hold grants for the signed-in person, and a way to end each one. */
export function AgentsPage(props: AgentsPageProps) {
  return (
    <Layout title="Your agents">
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
          <section class="agent">
            <h2>{agent.clientName}</h2>
            <p class="muted">{agent.clientId}</p>
            {agent.resources.map((r) => (
              <div class="agent-resource">
                <p>
                  <strong>{r.name}</strong> <span class="muted">({r.uri})</span>, since{' '}
                  <time datetime={r.since}>{formatTime(r.since)}</time>
                </p>
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
              </div>
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
      <p>
        <a href="/account">Back to your account</a>
      </p>
    </Layout>
  )
}

/** The agents page as a complete HTML document. */
export function agentsPage(props: AgentsPageProps): string {
  return renderPage(<AgentsPage {...props} />)
}
