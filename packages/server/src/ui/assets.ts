import { Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import { sha256Hex } from '../lib/random.js'
import { INBOX_SCRIPT } from './inbox-script.js'
import { STYLESHEET } from './styles.js'

const version = sha256Hex(STYLESHEET).slice(0, 12)

/** Where pages link the stylesheet; the content hash in the name lets browsers cache it for good. */
export const STYLESHEET_PATH = `/assets/deputy-${version}.css`

/** Where the approvals pages load their script (live updates), named by its content hash too. */
export const INBOX_SCRIPT_PATH = `/assets/inbox-${sha256Hex(INBOX_SCRIPT).slice(0, 12)}.js`

/** Serves the stylesheet and the script (the CSP allows both from 'self' only, never inline). */
export function assetRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.get(STYLESHEET_PATH, (c) =>
    c.body(STYLESHEET, 200, {
      'Content-Type': 'text/css; charset=utf-8',
      'Cache-Control': 'public, max-age=31536000, immutable',
    }),
  )
  app.get(INBOX_SCRIPT_PATH, (c) =>
    c.body(INBOX_SCRIPT, 200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=31536000, immutable',
    }),
  )
  return app
}
