/**
 * A browser reduced to what Deputy's pages need: it follows redirects by hand, keeps cookies per
 * origin, reads the HTML forms and submits them over real sockets. No script runs on Deputy's
 * pages, so this is what a person's browser does there.
 */

/** One HTML form as a browser would submit it. */
export interface HtmlForm {
  action: string
  method: string
  /** Hidden and visible inputs with their current values, in document order. */
  fields: [string, string][]
  /** Named submit buttons: the one clicked adds its name=value. */
  buttons: { name: string; value: string; label: string }[]
  /** Names of password inputs (a sign-in form has one). */
  passwords: string[]
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  '#39': "'",
  '#x27': "'",
  '#x2F': '/',
  '#47': '/',
  '#61': '=',
  '#x3D': '=',
}

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
    if (!name) continue
    result[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return result
}

/** The forms in an HTML page. */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttrs = attributes(m[1] ?? '')
    const body = m[2] ?? ''
    const form: HtmlForm = {
      action: formAttrs.action ?? '',
      method: (formAttrs.method ?? 'get').toLowerCase(),
      fields: [],
      buttons: [],
      passwords: [],
    }
    for (const el of body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>|<input\b([^>]*)>/gi)) {
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

/** One step the browser took, for failure messages. */
export interface Step {
  method: string
  url: string
  status: number
  location?: string
}

/** Cookies kept per origin, sent back to that origin only. */
class CookieJar {
  private readonly byOrigin = new Map<string, Map<string, string>>()

  header(url: URL): string | undefined {
    const jar = this.byOrigin.get(url.origin)
    if (!jar || jar.size === 0) return undefined
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  store(url: URL, response: Response): void {
    let jar = this.byOrigin.get(url.origin)
    if (!jar) {
      jar = new Map()
      this.byOrigin.set(url.origin, jar)
    }
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some(
        (a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a),
      )
      if (expired || value === '') jar.delete(name)
      else jar.set(name, value)
    }
  }
}

/** A cookie-keeping client that follows redirects one hop at a time and records each hop. */
export function formBrowser() {
  const jar = new CookieJar()
  const steps: Step[] = []

  async function request(method: string, url: URL, body?: URLSearchParams): Promise<Response> {
    const headers = new Headers({ accept: 'text/html,application/json;q=0.9' })
    const cookie = jar.header(url)
    if (cookie) headers.set('cookie', cookie)
    if (body) headers.set('content-type', 'application/x-www-form-urlencoded')
    // Forms on Deputy's pages post to Deputy; say so the way a browser does (CSRF defences).
    if (method === 'POST') headers.set('origin', url.origin)
    const response = await fetch(url, {
      method,
      headers,
      body: body?.toString(),
      redirect: 'manual',
    })
    jar.store(url, response)
    const location = response.headers.get('location') ?? undefined
    steps.push({ method, url: url.href, status: response.status, location })
    return response
  }

  return {
    steps,
    /**
     * Requests `url` and follows redirects until a page that is not a redirect, or until the next
     * hop would leave for `stopAtOrigin` (returned unvisited, so the caller decides).
     */
    async follow(
      start: { method: string; url: URL; body?: URLSearchParams },
      stopAtOrigin?: string,
    ): Promise<{ url: URL; response?: Response; html?: string }> {
      let { method, url, body } = start
      for (let hop = 0; hop < 15; hop++) {
        if (stopAtOrigin && url.origin === stopAtOrigin) return { url }
        const response = await request(method, url, body)
        const location = response.headers.get('location')
        if (response.status >= 300 && response.status < 400 && location) {
          await response.body?.cancel()
          url = new URL(location, url)
          method = 'GET'
          body = undefined
          continue
        }
        const html = await response.text()
        return { url, response, html }
      }
      throw new Error(`more than 15 redirects: ${steps.map((s) => s.url).join(' -> ')}`)
    },
    /** Plain GET, no redirects followed. */
    get: (url: URL) => request('GET', url),
  }
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
