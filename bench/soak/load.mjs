// The soak's requests: each function sends one request to a running Deputy and says whether the
// answer was one the server should give (a refusal is expected for bad input; a 5xx, a socket error
// or a wrong status is not). Many requests carry fresh random values (emails, client names, paths,
// addresses in the bodies) so that anything keyed by request input would keep growing.
import { randomBytes } from 'node:crypto'
import { basicAuth, REDIRECT_URI, RESOURCE, TOKEN_BODY } from '../token-endpoint/lib/common.mjs'
import { CookieJar, firstPostForm } from '../token-endpoint/lib/flow.mjs'

const FORM = 'application/x-www-form-urlencoded'
const rand = () => randomBytes(9).toString('base64url')

/** Sends a request; `ok(status, text)` decides whether the answer is the expected one. */
async function send(url, init, ok) {
  const res = await fetch(url, { redirect: 'manual', ...init })
  const text = await res.text()
  return { status: res.status, ok: ok(res.status, text) }
}

/** The operations, bound to one server (`info`: url, clientId, clientSecret). */
export function operations(info) {
  const at = (path) => new URL(path, info.url).href
  const auth = basicAuth(info.clientId, info.clientSecret)
  let accessToken

  async function token() {
    const res = await fetch(at('/token'), {
      method: 'POST',
      headers: { 'content-type': FORM, authorization: auth },
      body: TOKEN_BODY,
    })
    const text = await res.text()
    if (res.status === 200) accessToken = JSON.parse(text).access_token
    return { status: res.status, ok: res.status === 200 }
  }

  async function introspect() {
    if (!accessToken) await token()
    // Half the time the real token (active), half a random string (inactive): both are 200.
    const subject = Math.random() < 0.5 ? accessToken : `${rand()}.${rand()}.${rand()}`
    return send(
      at('/introspect'),
      {
        method: 'POST',
        headers: { 'content-type': FORM, authorization: auth },
        body: new URLSearchParams({ token: subject }).toString(),
      },
      (status, text) => status === 200 && text.includes('"active"'),
    )
  }

  /** A sign-in with the right CSRF token but an unknown account: refused, not a redirect. */
  async function failedLogin() {
    const jar = new CookieJar()
    const page = await fetch(at('/login'), { redirect: 'manual' })
    jar.store(page)
    const form = firstPostForm(await page.text())
    if (!form) return { status: page.status, ok: false }
    const body = new URLSearchParams(form.fields)
    body.set('email', `${rand()}@soak.example`)
    body.set('password', rand())
    return send(
      new URL(form.action || '/login', at('/login')).href,
      { method: 'POST', headers: { 'content-type': FORM, cookie: jar.header() }, body },
      (status) => status >= 400 && status < 500,
    )
  }

  /** One of several malformed requests, each refused with a 4xx. */
  async function badInput() {
    const refused = (status) => status >= 400 && status < 500
    const kinds = [
      // A wrong client secret.
      () =>
        send(
          at('/token'),
          {
            method: 'POST',
            headers: { 'content-type': FORM, authorization: basicAuth(info.clientId, rand()) },
            body: TOKEN_BODY,
          },
          refused,
        ),
      // An unknown client.
      () =>
        send(
          at('/token'),
          {
            method: 'POST',
            headers: { 'content-type': FORM, authorization: basicAuth(`client_${rand()}`, rand()) },
            body: TOKEN_BODY,
          },
          refused,
        ),
      // A form of junk.
      () =>
        send(
          at('/token'),
          { method: 'POST', headers: { 'content-type': FORM }, body: `${rand()}=%zz&grant_type=` },
          refused,
        ),
      // Registration JSON that is not JSON.
      () =>
        send(
          at('/register'),
          { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{${rand()}` },
          refused,
        ),
      // An authorization request for an unknown client.
      () => send(at(`/authorize?client_id=${rand()}&response_type=code`), {}, refused),
      // A path that does not exist.
      () => send(at(`/${rand()}`), {}, refused),
    ]
    return kinds[Math.floor(Math.random() * kinds.length)]()
  }

  /** RFC 7591 dynamic registration of a new public client. */
  function register() {
    return send(
      at('/register'),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: `soak ${rand()}`,
          redirect_uris: [REDIRECT_URI],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          resource: RESOURCE,
        }),
      },
      (status) => status === 201,
    )
  }

  return { token, introspect, failedLogin, badInput, register }
}
