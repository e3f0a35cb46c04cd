import type { ProtectedResourceMetadata } from './metadata.js'
import type { TokenCheck } from './verify/types.js'

/** What the page says about the server: its names and its RFC 9728 metadata. */
export interface BrowserPageFacts {
  /** The name people know the server by (`resourceName`, else the MCP server's name). */
  readonly name: string
  readonly metadata: ProtectedResourceMetadata
  /** Where the metadata document is served. */
  readonly metadataUrl: string
}

/**
 * True when a request prefers an HTML page to anything else it accepts: a person's browser
 * opening the URL sends `text/html` first; MCP clients ask for JSON or an event stream.
 */
export function prefersHtml(accept: string | null): boolean {
  if (!accept) return false
  let html = 0
  let other = 0
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    const q = params.find((p) => p.startsWith('q='))
    const quality = q === undefined ? 1 : Number(q.slice(2)) || 0
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, quality)
    else if (type === 'application/json' || type === 'text/event-stream')
      other = Math.max(other, quality)
  }
  return html > 0 && html > other
}

function escapeHtml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (char) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char,
  )
}

/** The page's only styles, allowed by their hash: no inline script, no other style, nothing loaded. */
const STYLE = `
:root { color-scheme: light dark; }
body { max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
  font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
code, pre { font: 0.9rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { padding: 0.75rem 1rem; border: 1px solid #8884; border-radius: 0.5rem;
  overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.url { font-size: 1.05rem; }
dt { font-weight: 600; margin-top: 0.75rem; }
dd { margin: 0.25rem 0 0; }
`

let styleHash: Promise<string> | undefined

/** CSP3 hash-source for the style block: `'sha256-<base64>'` (standard base64, padded). */
function styleSource(): Promise<string> {
  styleHash ??= crypto.subtle
    .digest('SHA-256', new TextEncoder().encode(STYLE))
    .then((digest) => `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`)
  return styleHash
}

/** The page a person sees on opening the MCP URL in a browser: what it is and how to add it. */
export function browserPageHtml(facts: BrowserPageFacts): string {
  const url = facts.metadata.resource
  const e = escapeHtml
  const slug =
    facts.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'mcp-server'
  const vscode = JSON.stringify({ servers: { [slug]: { type: 'http', url } } }, null, 2)
  const servers = facts.metadata.authorization_servers
    .map((issuer) => `<li><code>${e(issuer)}</code></li>`)
    .join('')
  const scopes = facts.metadata.scopes_supported ?? []
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${e(facts.name)} · MCP server</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${e(facts.name)}</h1>
<p>This is an <strong>MCP server</strong> protected by Deputy: AI agents and apps that speak the
Model Context Protocol call its tools here, on behalf of a person who signs in and agrees. There
is nothing to use in a browser.</p>
<h2>Add it to your MCP client</h2>
<p>Give your client this URL (the server's resource URL):</p>
<pre class="url"><code>${e(url)}</code></pre>
<dl>
<dt>Claude</dt>
<dd>Settings → Connectors → Add custom connector, and paste the URL. Claude Code:
<pre><code>claude mcp add --transport http ${e(slug)} ${e(url)}</code></pre></dd>
<dt>VS Code</dt>
<dd>Add to <code>.vscode/mcp.json</code>:
<pre><code>${e(vscode)}</code></pre></dd>
<dt>MCP Inspector</dt>
<dd>Run <code>npx @modelcontextprotocol/inspector</code>, choose the Streamable HTTP transport and
paste the URL.</dd>
</dl>
<p>The client then sends you to sign in: it finds where from this server's
<a href="${e(facts.metadataUrl)}">protected resource metadata</a> (RFC 9728).</p>
<h2>Details</h2>
<dl>
<dt>Sign-in (authorization server)</dt>
<dd><ul>${servers}</ul></dd>
${scopes.length > 0 ? `<dt>Scopes</dt><dd><code>${e(scopes.join(' '))}</code></dd>` : ''}
</dl>
</main>
</body>
</html>
`
}

/**
 * For a person's browser opening the MCP URL without a token, the same 401 and challenge an MCP
 * client gets, with a page instead of an empty body; any other refusal is returned as it is. The
 * page has its own strict CSP: nothing loads, no script runs, only its own style block applies.
 */
export async function browserPageOr(
  request: Request,
  check: Extract<TokenCheck, { ok: false }>,
  refusal: Response,
  facts: () => BrowserPageFacts,
): Promise<Response> {
  if (
    request.method !== 'GET' ||
    check.reason !== 'missing' ||
    !prefersHtml(request.headers.get('accept'))
  )
    return refusal
  const headers = new Headers(refusal.headers)
  headers.set('content-type', 'text/html; charset=utf-8')
  headers.set(
    'content-security-policy',
    `default-src 'none'; style-src ${await styleSource()}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  )
  headers.set('x-content-type-options', 'nosniff')
  headers.set('referrer-policy', 'no-referrer')
  headers.set('vary', 'Accept')
  return new Response(browserPageHtml(facts()), { status: refusal.status, headers })
}
