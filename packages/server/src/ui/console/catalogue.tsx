import { ConsoleLayout, consolePage } from './layout.js'

/** A resource as the console lists it. */
export interface ResourceView {
  uri: string
  name: string
  scopes: { scope: string; sentence: string }[]
  claimsTemplate: string[]
  isDefault: boolean
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
