import type { Context } from 'hono'
import type { AppEnv } from '../http/env.js'
import { messagePage } from './message-page.js'

/** Longest path the page repeats back. */
const SHOWN_PATH = 200

/**
 * True when the request prefers an HTML page to JSON: a browser navigating sends `text/html`
 * first (with `*\/*` far behind), an API client sends `application/json`, `*\/*` or nothing.
 * RFC 9110 §12.5.1: the higher quality wins; a tie goes to JSON, the answer every API client
 * here has always had.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false
  let html = 0
  let json = 0
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    const q = params.find((p) => p.startsWith('q='))
    const quality = q === undefined ? 1 : Number(q.slice(2)) || 0
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, quality)
    if (type === 'application/json') json = Math.max(json, quality)
  }
  return html > 0 && html > json
}

/**
 * The answer for a path no route serves: a page in Deputy's own look for a browser, the JSON
 * error it has always been for everyone else. `Vary: Accept` keeps a cache from mixing the two.
 */
export function notFoundResponse(c: Context<AppEnv>): Response {
  c.header('Vary', 'Accept')
  if (!prefersHtml(c.req.header('accept'))) {
    return c.json(
      { error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` },
      404,
    )
  }
  const path = c.req.path.length > SHOWN_PATH ? `${c.req.path.slice(0, SHOWN_PATH)}…` : c.req.path
  return c.html(
    messagePage({
      title: 'Page not found',
      text: 'There is no page at this address.',
      facts: [{ term: 'Address', value: path }],
      link: { href: '/account', label: 'Go to your account' },
    }),
    404,
  )
}
