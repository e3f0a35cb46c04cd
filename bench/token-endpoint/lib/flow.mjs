// One OAuth authorization-code flow with PKCE, driven like a browser that is already signed in:
// authorize -> (consent form, when the server shows one) -> redirect with code -> token.
import { createHash, randomBytes } from 'node:crypto'
import { basicAuth, REDIRECT_URI, RESOURCE, SCOPE } from './common.mjs'

/** Cookies for one origin, shared by all flows of one client process (one person, many tabs). */
export class CookieJar {
  cookies = new Map()

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some(
        (a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a),
      )
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
}

const decode = (v) =>
  v
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')

function attrs(tag) {
  const out = {}
  for (const m of tag.matchAll(
    /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g,
  )) {
    out[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return out
}

/** The first POST form of a page: action, fields, submit buttons, password inputs. */
export function firstPostForm(html) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const form = attrs(m[1])
    if ((form.method ?? 'get').toLowerCase() !== 'post') continue
    const fields = []
    const buttons = []
    const passwords = []
    for (const el of m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>|<input\b([^>]*)>/gi)) {
      const isButton = el[1] !== undefined
      const a = attrs(isButton ? el[1] : el[3])
      const type = (a.type ?? (isButton ? 'submit' : 'text')).toLowerCase()
      if (type === 'submit') {
        const label = (el[2] ?? a.value ?? '').replace(/<[^>]*>/g, '').trim()
        buttons.push({ name: a.name ?? '', value: a.value ?? '', label })
      } else if (a.name && !((type === 'checkbox' || type === 'radio') && !('checked' in a))) {
        if (type === 'password') passwords.push(a.name)
        fields.push([a.name, a.value ?? ''])
      }
    }
    return { action: form.action ?? '', fields, buttons, passwords }
  }
  return undefined
}

/** A client for one server: `request` keeps cookies and never follows redirects itself. */
export function client(info) {
  const jar = new CookieJar()
  async function request(method, url, body) {
    const headers = { accept: 'text/html,application/json;q=0.9' }
    if (jar.cookies.size > 0) headers.cookie = jar.header()
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded'
    if (method === 'POST') headers.origin = new URL(url).origin
    const res = await fetch(url, { method, headers, body, redirect: 'manual' })
    jar.store(res)
    return res
  }

  /** Submits a form the way a browser would: fields, overrides, and the clicked button. */
  function submit(form, pageUrl, overrides = {}, button) {
    const body = new URLSearchParams()
    for (const [name, value] of form.fields) body.append(name, overrides[name] ?? value)
    for (const [name, value] of Object.entries(overrides)) {
      if (!form.fields.some(([n]) => n === name)) body.append(name, value)
    }
    if (button?.name) body.append(button.name, button.value)
    return request('POST', new URL(form.action || pageUrl, pageUrl).href, body.toString())
  }

  /** Signs the bench person in once through the sign-in form (Deputy), if the server has one. */
  async function signIn() {
    const login = info.authorizationCode.login
    if (!login) return
    const url = new URL(login.path, info.url).href
    const page = await request('GET', url)
    const form = firstPostForm(await page.text())
    if (!form) throw new Error(`no sign-in form at ${login.path} (HTTP ${page.status})`)
    const res = await submit(form, url, { email: login.email, password: login.password })
    await res.body?.cancel()
    if (res.status !== 303 && res.status !== 302) {
      throw new Error(`POST ${login.path} answered ${res.status}, expected a redirect`)
    }
  }

  /** One full flow; returns the token response body. */
  async function flow() {
    const ac = info.authorizationCode
    const verifier = randomBytes(32).toString('base64url')
    const state = randomBytes(16).toString('base64url')
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: ac.clientId,
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      resource: RESOURCE,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    })
    let url = new URL(`${ac.authorizePath}?${query}`, info.url).href
    let res = await request('GET', url)
    let code
    for (let hop = 0; hop < 10 && code === undefined; hop++) {
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel()
        const next = new URL(location, url)
        if (next.href.startsWith(REDIRECT_URI)) {
          if (next.searchParams.get('error')) {
            throw new Error(`authorization error: ${next.searchParams.get('error')}`)
          }
          if (next.searchParams.get('state') !== state) throw new Error('state not echoed')
          code = next.searchParams.get('code')
          break
        }
        url = next.href
        res = await request('GET', url)
        continue
      }
      const html = await res.text()
      const form = res.status === 200 ? firstPostForm(html) : undefined
      if (!form) {
        throw new Error(`HTTP ${res.status} at ${new URL(url).pathname}: ${html.slice(0, 200)}`)
      }
      if (form.passwords.length > 0) {
        throw new Error(`the sign-in page came back at ${new URL(url).pathname}: session lost?`)
      }
      const allow =
        form.buttons.find((b) => /allow|approve|accept/i.test(`${b.value} ${b.label}`)) ??
        (form.buttons.length === 1 ? form.buttons[0] : undefined)
      if (!allow) throw new Error(`no Allow button on ${new URL(url).pathname}`)
      res = await submit(form, url, {}, allow)
    }
    if (!code) throw new Error('no code after 10 hops')
    const tokenRes = await fetch(new URL(info.tokenPath, info.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basicAuth(ac.clientId, ac.clientSecret),
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
        resource: RESOURCE,
      }).toString(),
    })
    const text = await tokenRes.text()
    if (tokenRes.status !== 200) {
      throw new Error(`token endpoint answered ${tokenRes.status}: ${text.slice(0, 200)}`)
    }
    const body = JSON.parse(text)
    if (typeof body.access_token !== 'string') throw new Error('no access_token')
    return body
  }

  return { signIn, flow, jar }
}
