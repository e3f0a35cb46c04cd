import { ConsoleLayout, Csrf, consolePage } from './layout.js'

/** A resource as the console shows it (plain data). */
export interface ResourceView {
  uri: string
  name: string
  /** Each scope with the sentence the consent page shows for it. */
  scopes: { scope: string; sentence: string }[]
  claimsTemplate: string[]
  isDefault: boolean
}

/** An authorization detail type (RFC 9396) a resource accepts. */
export interface DetailTypeView {
  type: string
  description: string
  template: string
  /** The JSON Schema of one detail, as JSON text. */
  schema: string
  highRisk: boolean
  /** Built in for every resource: shown, not changed. */
  builtIn: boolean
}

/** Blank scope rows a form offers beside the resource's own. */
export const BLANK_SCOPE_ROWS = 3

/** The path of a resource's page: its URI is one encoded path segment. */
export function resourceHref(uri: string, rest = ''): string {
  return `/admin/resources/${encodeURIComponent(uri)}${rest}`
}

/** Rows of scope name and consent sentence, `scope_<i>` and `sentence_<i>`, then blank ones. */
function ScopeRows(props: { scopes: ResourceView['scopes'] }) {
  const rows = [
    ...props.scopes,
    ...Array.from({ length: BLANK_SCOPE_ROWS }, () => ({ scope: '', sentence: '' })),
  ]
  return (
    <>
      <p class="muted">
        Each scope needs the sentence people read on the consent page. Empty a row's name and
        sentence to remove that scope.
      </p>
      {rows.map((row, i) => (
        <fieldset>
          <legend>Scope {i + 1}</legend>
          <div class="field">
            <label for={`scope-${i}`}>Scope {i + 1} name</label>
            <input
              id={`scope-${i}`}
              type="text"
              name={`scope_${i}`}
              value={row.scope}
              autocomplete="off"
            />
          </div>
          <div class="field">
            <label for={`sentence-${i}`}>Scope {i + 1} consent sentence</label>
            <input
              id={`sentence-${i}`}
              type="text"
              name={`sentence_${i}`}
              value={row.sentence}
              autocomplete="off"
            />
          </div>
        </fieldset>
      ))}
    </>
  )
}

function ClaimsField(props: { claims: string[] }) {
  return (
    <div class="field">
      <label for="claims">
        Claims in its tokens, copied from the person (names separated by commas, e.g. email,
        favorite_song)
      </label>
      <input
        id="claims"
        type="text"
        name="claims"
        value={props.claims.join(', ')}
        autocomplete="off"
      />
    </div>
  )
}

function DefaultField(props: { checked: boolean }) {
  return (
    <label class="check">
      <input type="checkbox" name="default" value="yes" checked={props.checked} />
      The default: used when a client names no resource
    </label>
  )
}

/** Resources: each protected server with its scopes and claims, and a form to add one. */
export function resourcesPage(props: {
  resources: ResourceView[]
  csrfToken: string
  notice?: string
}): string {
  return consolePage(
    <ConsoleLayout title="Resources" section="resources" notice={props.notice}>
      {props.resources.length === 0 ? (
        <p class="muted">No resource is registered yet. Add the first one below.</p>
      ) : (
        <ul class="rows" aria-label="Resources">
          {props.resources.map((r) => (
            <li>
              <a href={resourceHref(r.uri)}>{r.name}</a>
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
      <h2>Add a resource</h2>
      <form method="post" action="/admin/resources">
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="uri">
            URI (the resource indicator clients send, e.g. https://mcp.example/mcp)
          </label>
          <input id="uri" type="url" name="uri" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="name">Name (optional: the host)</label>
          <input id="name" type="text" name="name" autocomplete="off" />
        </div>
        <ScopeRows scopes={[]} />
        <ClaimsField claims={[]} />
        <DefaultField checked={false} />
        <button type="submit">Add resource</button>
      </form>
    </ConsoleLayout>,
  )
}

export interface ResourcePageProps {
  resource: ResourceView
  detailTypes: DetailTypeView[]
  csrfToken: string
  notice?: string
}

/** One resource: its name, scopes, claims and default in one form; its detail types. */
export function resourcePage(props: ResourcePageProps): string {
  const r = props.resource
  return consolePage(
    <ConsoleLayout title={r.name} section="resources" notice={props.notice}>
      <dl>
        <dt>URI</dt>
        <dd>
          <code>{r.uri}</code>
        </dd>
      </dl>
      <form method="post" action={resourceHref(r.uri)}>
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="name">Name</label>
          <input id="name" type="text" name="name" value={r.name} autocomplete="off" />
        </div>
        <h2>Scopes</h2>
        <ScopeRows scopes={r.scopes} />
        <h2>Claims</h2>
        <ClaimsField claims={r.claimsTemplate} />
        <DefaultField checked={r.isDefault} />
        <button type="submit">Save resource</button>
      </form>
      <h2 id="detail-types">Authorization detail types</h2>
      <p class="muted">
        What an agent may ask this resource's approvals for in <code>authorization_details</code>{' '}
        (RFC 9396), each checked against its JSON Schema and read to people as its sentence.
      </p>
      <ul class="rows" aria-label="Detail types">
        {props.detailTypes.map((t) => (
          <li>
            <strong>{t.type}</strong>
            {t.builtIn ? <span class="muted"> (built in)</span> : null}
            {t.highRisk ? <span class="badge">high risk</span> : null}
            <p>{t.template}</p>
            {t.description !== t.template ? <p class="muted">{t.description}</p> : null}
            {t.builtIn ? null : (
              <>
                <p class="muted">
                  Schema: <code>{t.schema}</code>
                </p>
                <form
                  method="post"
                  action={resourceHref(r.uri, `/detail-types/${encodeURIComponent(t.type)}/remove`)}
                >
                  <Csrf token={props.csrfToken} />
                  <button type="submit" class="secondary inline">
                    Remove {t.type}
                  </button>
                </form>
              </>
            )}
          </li>
        ))}
      </ul>
      <h2>Add or replace a detail type</h2>
      <form method="post" action={resourceHref(r.uri, '/detail-types')}>
        <Csrf token={props.csrfToken} />
        <div class="field">
          <label for="type">Type (e.g. payment_initiation; the same type is replaced)</label>
          <input id="type" type="text" name="type" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="template">
            Sentence people read, with {'{field.path}'} placeholders (e.g. Pay {'{amount}'} to{' '}
            {'{creditor}'})
          </label>
          <input id="template" type="text" name="template" required autocomplete="off" />
        </div>
        <div class="field">
          <label for="type-description">What it is for (optional: the sentence)</label>
          <input id="type-description" type="text" name="description" autocomplete="off" />
        </div>
        <div class="field">
          <label for="schema">JSON Schema (draft 2020-12) of one detail</label>
          <textarea id="schema" name="schema" spellcheck={false} required>
            {'{"type": "object"}'}
          </textarea>
        </div>
        <label class="check">
          <input type="checkbox" name="high_risk" value="yes" />
          High risk: approving needs a fresh sign-in
        </label>
        <button type="submit" class="secondary">
          Save detail type
        </button>
      </form>
      <p>
        <a href="/admin/resources">All resources</a>
      </p>
    </ConsoleLayout>,
  )
}
