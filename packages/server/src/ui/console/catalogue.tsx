import { ConsoleLayout, consolePage } from './layout.js'

/** A resource as the console lists it. */
export interface ResourceView {
  uri: string
  name: string
  scopes: { scope: string; sentence: string }[]
  claimsTemplate: string[]
  isDefault: boolean
}

/** An upstream provider as the console lists it (never its secret). */
export interface ProviderView {
  name: string
  displayName: string
  type: string
  uses: string[]
  status: 'active' | 'disabled'
  scopes: string[]
}

/** Resources: each protected server, its scopes in the words of the consent page, its claims. */
export function resourcesPage(props: { resources: ResourceView[] }): string {
  return consolePage(
    <ConsoleLayout title="Resources" section="resources">
      {props.resources.length === 0 ? (
        <p class="muted">
          No resource is registered yet. Add one with <code>deputy resources add</code>.
        </p>
      ) : (
        <ul class="rows" aria-label="Resources">
          {props.resources.map((r) => (
            <li>
              <strong>{r.name}</strong>
              {r.isDefault ? <span class="muted"> (default)</span> : null}
              <p class="muted">
                <code>{r.uri}</code>
              </p>
              {r.scopes.length === 0 ? (
                <p class="muted">No scopes.</p>
              ) : (
                <ul class="scopes">
                  {r.scopes.map((s) => (
                    <li>
                      <code>{s.scope}</code>: {s.sentence}
                    </li>
                  ))}
                </ul>
              )}
              <p>
                Claims in its tokens:{' '}
                {r.claimsTemplate.length > 0 ? r.claimsTemplate.join(', ') : 'none'}
              </p>
            </li>
          ))}
        </ul>
      )}
      <p class="muted">
        Change resources with <code>deputy resources</code> or the admin API.
      </p>
    </ConsoleLayout>,
  )
}

/** Providers: the upstream services people sign in with or connect. */
export function providersPage(props: { providers: ProviderView[] }): string {
  return consolePage(
    <ConsoleLayout title="Providers" section="providers">
      {props.providers.length === 0 ? (
        <p class="muted">
          No provider is configured. Add one with <code>deputy providers add</code>.
        </p>
      ) : (
        <ul class="rows" aria-label="Providers">
          {props.providers.map((p) => (
            <li>
              <strong>{p.displayName}</strong> <span class="muted">({p.type})</span>
              {p.status === 'disabled' ? <span class="badge">disabled</span> : null}
              <p class="muted">
                <code>{p.name}</code> · used for {p.uses.join(' and ')}
                {p.scopes.length > 0 ? ` · scopes ${p.scopes.join(' ')}` : ''}
              </p>
            </li>
          ))}
        </ul>
      )}
    </ConsoleLayout>,
  )
}
