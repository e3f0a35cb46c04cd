import type { Deputy } from '../../src/deputy.js'

/** A few cookies kept between requests, the way a browser would for one origin. */
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
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))
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

/** A browser-like client for an in-process Deputy: keeps cookies, sends forms. */
export function browser(deputy: Pick<Deputy, 'app'>, env?: unknown) {
  const jar = new CookieJar()
  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (jar.cookies.size > 0 && !headers.has('cookie')) headers.set('cookie', jar.header())
    const response = await deputy.app.request(
      `http://localhost:8080${path}`,
      { ...init, headers },
      env as never,
    )
    jar.store(response)
    return response
  }
  return {
    jar,
    request,
    get: (path: string) => request(path),
    /** Posts a urlencoded form. */
    post: (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
      request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(fields).toString(),
      }),
    /** Opens the sign-in page and returns the CSRF token from its form. */
    async openLogin(returnTo?: string): Promise<string> {
      const query = returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`
      const page = await request(`/login${query}`)
      return hiddenField(await page.text(), 'csrf_token')
    },
    /** Opens the sign-in page and submits it. */
    async signIn(email: string, password: string, returnTo?: string): Promise<Response> {
      const csrf = await this.openLogin()
      return this.post('/login', {
        csrf_token: csrf,
        email,
        password,
        ...(returnTo === undefined ? {} : { return_to: returnTo }),
      })
    },
  }
}
