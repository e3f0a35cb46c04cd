// Before anything renders: keeps hono/jsx from turning async hooks on (render-context.ts).
import './render-context.js'
import type { Child } from 'hono/jsx'
import { STYLESHEET_PATH } from './assets.js'

/**
 * The frame every page shares: language, viewport, the one stylesheet, and a landmark; `script`
 * (or `scripts`) names a script from /assets/ (deferred, so pages work before and without it).
 * `wide` pages (the operator console) use more of a desktop screen; `nav` goes in the header.
 */
export function Layout(props: {
  title: string
  children: Child
  script?: string
  /** Several scripts from /assets/, run in this order (deferred scripts keep document order). */
  scripts?: readonly string[]
  wide?: boolean
  nav?: Child
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · Deputy`}</title>
        <link rel="stylesheet" href={STYLESHEET_PATH} />
        {props.script ? <script src={props.script} defer /> : null}
        {(props.scripts ?? []).map((src) => (
          <script src={src} defer />
        ))}
      </head>
      <body class={props.wide ? 'wide' : undefined}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="site">
          Deputy
          {props.nav ?? null}
        </header>
        <main id="main">{props.children}</main>
      </body>
    </html>
  )
}

/** Renders a page to a full HTML document. */
export function renderPage(page: unknown): string {
  return `<!doctype html>${String(page)}`
}
