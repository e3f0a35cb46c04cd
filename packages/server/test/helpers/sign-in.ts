import type { Deputy } from '../../src/deputy.js'

/**
 * Signing in and consenting through Deputy's real pages, written once. A browser reduced to what
 * those pages need: no script runs on them, so keeping cookies, reading the HTML forms and
 * submitting them is what a person's browser does there. Three ways to carry the requests, one
 * flow: in process (`app.request`), over a real socket (`fetch`), or from a chosen loopback
 * address (helpers/loopback.ts). A real Chromium is in helpers/chromium.ts.
 */

/** Cookies kept for one origin, the way a browser would. */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some(
        (a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a),
      )
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
}

/** The value of a hidden form field in a page. */
export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)
  if (!match?.[1]) throw new Error(`no hidden field ${name} in page`)
  return match[1]
}

/** Sends one request for a path of the client's origin; redirects are not followed. */
export type Transport = (path: string, init: RequestInit) => Promise<Response>

/**
 * A cookie-keeping client for one origin that fills in the sign-in form like a person. `headers`
 * go with every request (a proxy's `x-forwarded-for`, say).
 */
export function formClient(send: Transport, headers: Record<string, string> = {}) {
  const jar = new CookieJar()
  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    const all = new Headers(headers)
    new Headers(init.headers).forEach((value, name) => {
      all.set(name, value)
    })
    if (jar.cookies.size > 0 && !all.has('cookie')) all.set('cookie', jar.header())
    const response = await send(path, { ...init, headers: all })
    jar.store(response)
    return response
  }
  /** Posts a urlencoded form. */
  const post = (path: string, fields: Record<string, string>, extra: Record<string, string> = {}) =>
    request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...extra },
      body: new URLSearchParams(fields).toString(),
    })
  return {
    jar,
    request,
    get: (path: string) => request(path),
    post,
    /** Opens the sign-in page and returns the CSRF token from its form. */
    async openLogin(returnTo?: string): Promise<string> {
      const query = returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`
      const page = await request(`/login${query}`)
      return hiddenField(await page.text(), 'csrf_token')
    },
    /** Submits the sign-in form with a token from `openLogin`. */
    postLogin(csrf: string, email: string, password: string, returnTo?: string) {
      return post('/login', {
        csrf_token: csrf,
        email,
        password,
        ...(returnTo === undefined ? {} : { return_to: returnTo }),
      })
    },
    /** Opens the sign-in page and submits it. */
    async signIn(email: string, password: string, returnTo?: string): Promise<Response> {
      return this.postLogin(await this.openLogin(), email, password, returnTo)
    },
  }
}

/** A form client for an in-process Deputy (no socket), at http://localhost:8080. */
export function browser(deputy: Pick<Deputy, 'app'>, env?: unknown) {
  return formClient(async (path, init) =>
    deputy.app.request(`http://localhost:8080${path}`, init, env as never),
  )
}

/** A form client for a Deputy listening at `origin`, over real sockets. */
export function socketBrowser(origin: string | URL, headers: Record<string, string> = {}) {
  const base = new URL(origin).origin
  return formClient(
    (path, init) => fetch(`${base}${path}`, { ...init, redirect: 'manual' }),
    headers,
  )
}

/** One HTML form as a browser would submit it. */
export interface HtmlForm {
  action: string
  method: string
  /** Hidden and visible inputs with their current values, in document order. */
  fields: [string, string][]
  /** Submit buttons: the one clicked adds its name=value. */
  buttons: { name: string; value: string; label: string }[]
  /** Names of password inputs (a sign-in form has one). */
  passwords: string[]
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (ENTITIES[name] !== undefined) return ENTITIES[name]
    if (/^#x/i.test(name)) return String.fromCodePoint(Number.parseInt(name.slice(2), 16))
    if (name.startsWith('#')) return String.fromCodePoint(Number.parseInt(name.slice(1), 10))
    return whole
  })
}

function attributes(tag: string): Record<string, string> {
  const result: Record<string, string> = {}
  for (const m of tag.matchAll(
    /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g,
  )) {
    const name = m[1]?.toLowerCase()
    if (name) result[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return result
}

/** The forms in an HTML page. */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttrs = attributes(m[1] ?? '')
    const form: HtmlForm = {
      action: formAttrs.action ?? '',
      method: (formAttrs.method ?? 'get').toLowerCase(),
      fields: [],
      buttons: [],
      passwords: [],
    }
    for (const el of (m[2] ?? '').matchAll(
      /<button\b([^>]*)>([\s\S]*?)<\/button>|<input\b([^>]*)>/gi,
    )) {
      const isButton = el[1] !== undefined
      const a = attributes((isButton ? el[1] : el[3]) ?? '')
      const type = (a.type ?? (isButton ? 'submit' : 'text')).toLowerCase()
      if (type === 'submit') {
        const label = decodeEntities((el[2] ?? a.value ?? '').replace(/<[^>]*>/g, '').trim())
        form.buttons.push({ name: a.name ?? '', value: a.value ?? '', label })
        continue
      }
      if (!a.name) continue
      if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue
      if (type === 'password') form.passwords.push(a.name)
      form.fields.push([a.name, a.value ?? (type === 'checkbox' ? 'on' : '')])
    }
    forms.push(form)
  }
  return forms
}

/** Builds the body a browser sends when `button` of `form` is clicked. */
export function formBody(
  form: HtmlForm,
  overrides: Record<string, string>,
  button?: { name: string; value: string },
): URLSearchParams {
  const body = new URLSearchParams()
  const seen = new Set<string>()
  for (const [name, value] of form.fields) {
    body.append(name, name in overrides && !seen.has(name) ? (overrides[name] ?? '') : value)
    seen.add(name)
  }
  for (const [name, value] of Object.entries(overrides))
    if (!seen.has(name)) body.append(name, value)
  if (button?.name) body.append(button.name, button.value)
  return body
}

/** `<meta http-equiv="refresh" content="0;url=…">`: Deputy's "returning to the app" page. */
function metaRefresh(html: string): string | undefined {
  for (const m of html.matchAll(/<meta\b([^>]*)>/gi)) {
    const a = attributes(m[1] ?? '')
    if (a['http-equiv']?.toLowerCase() !== 'refresh' || !a.content) continue
    const url = /;\s*url\s*=\s*['"]?([^'"]+)['"]?\s*$/i.exec(a.content)?.[1]
    if (url) return url
  }
  return undefined
}

/** The visible text of a page, white space folded. */
function visibleText(html: string): string {
  return decodeEntities(
    html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, '').replace(/<[^>]*>/g, ' '),
  )
    .replace(/\s+/g, ' ')
    .trim()
}

/** The pages a person saw on the way, by kind, with their visible text. */
export interface Visit {
  kind: 'login' | 'consent' | 'returning'
  url: string
  text: string
}

export interface BrowserResult {
  /** The redirect to the client's redirect URI, as the browser would load it (not loaded). */
  callback: URL
  visits: Visit[]
  /** Every request made: method, URL, status (for failure messages). */
  trail: string[]
}

function sameEndpoint(url: URL, redirectUri: string): boolean {
  const target = new URL(redirectUri)
  return url.origin === target.origin && url.pathname === target.pathname
}

/**
 * What a person's browser does between a client's authorization URL and its redirect URI, over
 * real sockets: follow redirects, keep cookies per origin, read the page, fill in the sign-in
 * form, press `decision` on the consent page. Returns the redirect to `redirectUri` without
 * following it. Nothing is read from Deputy's database; the only inputs are the URL the client
 * built and the person's email and password.
 */
export async function signInAndConsent(
  authorizationUrl: URL,
  redirectUri: string,
  person: { email: string; password: string },
  decision: 'allow' | 'deny' = 'allow',
): Promise<BrowserResult> {
  const jars = new Map<string, CookieJar>()
  const jarFor = (url: URL) => {
    const jar = jars.get(url.origin) ?? new CookieJar()
    jars.set(url.origin, jar)
    return jar
  }
  const trail: string[] = []
  const visits: Visit[] = []
  const fail = (message: string): never => {
    throw new Error(`${message}\n--- requests ---\n${trail.join('\n')}`)
  }

  let url = authorizationUrl
  let method = 'GET'
  let body: URLSearchParams | undefined
  for (let step = 0; step < 20; step++) {
    if (sameEndpoint(url, redirectUri)) return { callback: url, visits, trail }
    const jar = jarFor(url)
    const headers = new Headers({ accept: 'text/html' })
    if (jar.cookies.size > 0) headers.set('cookie', jar.header())
    if (body) {
      headers.set('content-type', 'application/x-www-form-urlencoded')
      // Forms on Deputy's pages post to Deputy; say so the way a browser does (CSRF defences).
      headers.set('origin', url.origin)
    }
    const response = await fetch(url, {
      method,
      headers,
      body: body?.toString(),
      redirect: 'manual',
    })
    jar.store(response)
    const location = response.headers.get('location')
    trail.push(`${method} ${url.href} -> ${response.status}${location ? ` ${location}` : ''}`)
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel()
      url = new URL(location, url)
      method = 'GET'
      body = undefined
      continue
    }
    const html = await response.text()
    if (!response.ok)
      fail(`HTTP ${response.status} at ${url.href}: ${visibleText(html).slice(0, 500)}`)
    const refresh = metaRefresh(html)
    if (refresh) {
      visits.push({ kind: 'returning', url: url.href, text: visibleText(html) })
      url = new URL(refresh, url)
      method = 'GET'
      body = undefined
      continue
    }
    const form = parseForms(html).find((f) => f.method === 'post')
    if (!form) return fail(`no form on the page at ${url.href}: ${visibleText(html).slice(0, 500)}`)
    if (form.passwords.length > 0) {
      visits.push({ kind: 'login', url: url.href, text: visibleText(html) })
      const passwords = Object.fromEntries(form.passwords.map((name) => [name, person.password]))
      body = formBody(form, { email: person.email, ...passwords })
    } else {
      visits.push({ kind: 'consent', url: url.href, text: visibleText(html) })
      const button = form.buttons.find((b) => b.value === decision)
      if (!button) return fail(`no ${decision} button on the consent page at ${url.href}`)
      body = formBody(form, {}, button)
    }
    url = new URL(form.action || url.href, url)
    method = 'POST'
  }
  return fail('more than 20 steps without reaching the redirect URI')
}
