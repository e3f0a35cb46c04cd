import { CookieJar } from '../login/client.js'

/**
 * What a person's browser does between a client's authorization URL and its redirect URI, over a
 * real socket: follow redirects, keep cookies, read the page, fill in the sign-in form, press
 * Allow on the consent page. Nothing is read from Deputy's database; the only inputs are the
 * authorization URL the client library built and the person's email and password.
 */

/** One HTML form: where it posts, its fields in document order, and its submit buttons. */
interface Form {
  action: string
  method: string
  fields: [string, string][]
  buttons: { name: string; value: string; label: string }[]
  passwords: string[]
}

function decode(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) =>
      String.fromCodePoint(Number.parseInt(hex, 16)),
    )
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number.parseInt(dec, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

function attributes(tag: string): Record<string, string> {
  const result: Record<string, string> = {}
  for (const m of tag.matchAll(
    /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g,
  )) {
    if (m[1]) result[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return result
}

function parseForms(html: string): Form[] {
  const forms: Form[] = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1] ?? '')
    const form: Form = {
      action: attrs.action ?? '',
      method: (attrs.method ?? 'get').toLowerCase(),
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
        const label = decode((el[2] ?? a.value ?? '').replace(/<[^>]*>/g, '').trim())
        form.buttons.push({ name: a.name ?? '', value: a.value ?? '', label })
        continue
      }
      if (!a.name) continue
      if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue
      if (type === 'password') form.passwords.push(a.name)
      form.fields.push([a.name, a.value ?? ''])
    }
    forms.push(form)
  }
  return forms
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

function text(html: string): string {
  return decode(html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, '').replace(/<[^>]*>/g, ' '))
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
 * Opens `authorizationUrl` and acts as `person` until Deputy redirects to `redirectUri`; returns
 * that redirect without following it. `decision` is the consent button pressed.
 */
export async function signInAndConsent(
  authorizationUrl: URL,
  redirectUri: string,
  person: { email: string; password: string },
  decision: 'allow' | 'deny' = 'allow',
): Promise<BrowserResult> {
  const jar = new CookieJar()
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
    const headers = new Headers({ accept: 'text/html' })
    if (jar.cookies.size > 0) headers.set('cookie', jar.header())
    if (body) {
      headers.set('content-type', 'application/x-www-form-urlencoded')
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
    if (!response.ok) fail(`HTTP ${response.status} at ${url.href}: ${text(html).slice(0, 500)}`)
    const refresh = metaRefresh(html)
    if (refresh) {
      visits.push({ kind: 'returning', url: url.href, text: text(html) })
      url = new URL(refresh, url)
      method = 'GET'
      body = undefined
      continue
    }
    const form = parseForms(html).find((f) => f.method === 'post')
    if (!form) return fail(`no form on the page at ${url.href}: ${text(html).slice(0, 500)}`)
    const fields = new URLSearchParams(form.fields)
    if (form.passwords.length > 0) {
      visits.push({ kind: 'login', url: url.href, text: text(html) })
      fields.set('email', person.email)
      for (const name of form.passwords) fields.set(name, person.password)
    } else {
      visits.push({ kind: 'consent', url: url.href, text: text(html) })
      const button = form.buttons.find((b) => b.value === decision)
      if (!button) return fail(`no ${decision} button on the consent page at ${url.href}`)
      fields.append(button.name, button.value)
    }
    url = new URL(form.action || url.href, url)
    method = 'POST'
    body = fields
  }
  return fail('more than 20 steps without reaching the redirect URI')
}
