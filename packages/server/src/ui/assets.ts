import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import { sha256Hex } from '../lib/random.js'
import { INBOX_SCRIPT } from './inbox-script.js'
import { PASSKEY_SCRIPT } from './passkey-script.js'
import { POLICY_EDITOR_SCRIPT } from './policy-editor-script.js'
import { STYLESHEET } from './styles.js'

const version = sha256Hex(STYLESHEET).slice(0, 12)

/** Where pages link the stylesheet; the content hash in the name lets browsers cache it for good. */
export const STYLESHEET_PATH = `/assets/deputy-${version}.css`

/** Where the approvals pages load their script (live updates), named by its content hash too. */
export const INBOX_SCRIPT_PATH = `/assets/inbox-${sha256Hex(INBOX_SCRIPT).slice(0, 12)}.js`

/** Where the console's policy editor loads its script (validation as one types). */
export const POLICY_EDITOR_SCRIPT_PATH = `/assets/policy-editor-${sha256Hex(POLICY_EDITOR_SCRIPT).slice(0, 12)}.js`

// @simplewebauthn/browser's prebuilt bundle (it defines `SimpleWebAuthnBrowser`), served from
// Deputy itself: no CDN, and the CSP's script-src 'self' stays as it is. The package's `main` is
// script/index.js; the bundle sits beside it under dist/.
const WEBAUTHN_BUNDLE = readFileSync(
  join(
    dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')),
    '..',
    'dist',
    'bundle',
    'index.umd.min.js',
  ),
  'utf8',
)

/** The WebAuthn browser library and Deputy's passkey script, in the order pages load them. */
export const PASSKEY_SCRIPT_PATHS = [
  `/assets/simplewebauthn-browser-${sha256Hex(WEBAUTHN_BUNDLE).slice(0, 12)}.js`,
  `/assets/passkeys-${sha256Hex(PASSKEY_SCRIPT).slice(0, 12)}.js`,
] as const

const SCRIPTS: [string, string][] = [
  [INBOX_SCRIPT_PATH, INBOX_SCRIPT],
  [PASSKEY_SCRIPT_PATHS[0], WEBAUTHN_BUNDLE],
  [PASSKEY_SCRIPT_PATHS[1], PASSKEY_SCRIPT],
  [POLICY_EDITOR_SCRIPT_PATH, POLICY_EDITOR_SCRIPT],
]

/** Serves the stylesheet and the scripts (the CSP allows both from 'self' only, never inline). */
export function assetRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  app.get(STYLESHEET_PATH, (c) =>
    c.body(STYLESHEET, 200, {
      'Content-Type': 'text/css; charset=utf-8',
      'Cache-Control': 'public, max-age=31536000, immutable',
    }),
  )
  for (const [path, script] of SCRIPTS) {
    app.get(path, (c) =>
      c.body(script, 200, {
        'Content-Type': 'text/javascript; charset=utf-8',
        'Cache-Control': 'public, max-age=31536000, immutable',
      }),
    )
  }
  return app
}
