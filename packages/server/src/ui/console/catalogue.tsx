import { ConsoleLayout, consolePage } from './layout.js'

/** An upstream provider as the console lists it (never its secret). */
export interface ProviderView {
  name: string
  displayName: string
  type: string
  uses: string[]
  status: 'active' | 'disabled'
  scopes: string[]
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
