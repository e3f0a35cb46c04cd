// One token response checked the way a resource server would, before and after every run.
import { createLocalJWKSet, jwtVerify } from 'jose'
import { basicAuth, RESOURCE, TOKEN_BODY } from './common.mjs'

async function jwksOf(info) {
  const res = await fetch(new URL(info.jwksPath, info.url))
  if (!res.ok) throw new Error(`GET ${info.jwksPath} answered ${res.status}`)
  return createLocalJWKSet(await res.json())
}

/** Verifies an access token: signature against the server's JWKS, typ at+jwt, ES256, iss, aud. */
export async function verifyAccessToken(info, accessToken, expected = {}) {
  const { payload, protectedHeader } = await jwtVerify(accessToken, await jwksOf(info), {
    issuer: info.issuer,
    audience: RESOURCE,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  })
  if (protectedHeader.typ !== 'at+jwt') throw new Error(`typ is ${protectedHeader.typ}`)
  for (const [claim, value] of Object.entries(expected)) {
    if (payload[claim] !== value) {
      throw new Error(`${claim} is ${JSON.stringify(payload[claim])}, expected ${value}`)
    }
  }
  return payload
}

/**
 * The client_credentials checks: 200 with a verifiable JWT for the resource, and 401
 * invalid_client for a wrong secret. Throws with a one-line reason.
 */
export async function verifyClientCredentials(info) {
  const post = (secret) =>
    fetch(new URL(info.tokenPath, info.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basicAuth(info.clientId, secret),
      },
      body: TOKEN_BODY,
    })
  const ok = await post(info.clientSecret)
  const text = await ok.text()
  if (ok.status !== 200) {
    throw new Error(`POST ${info.tokenPath} answered ${ok.status}: ${text.slice(0, 200)}`)
  }
  const body = JSON.parse(text)
  if (typeof body.access_token !== 'string') throw new Error('no access_token in the response')
  if (String(body.token_type).toLowerCase() !== 'bearer') {
    throw new Error(`token_type is ${body.token_type}`)
  }
  const payload = await verifyAccessToken(info, body.access_token, {
    client_id: info.clientId,
  })
  const wrong = await post(`${info.clientSecret}x`)
  const wrongBody = await wrong.json().catch(() => ({}))
  if (wrong.status !== 401 || wrongBody.error !== 'invalid_client') {
    throw new Error(
      `a wrong secret got ${wrong.status} ${JSON.stringify(wrongBody)}, expected 401 invalid_client`,
    )
  }
  return payload
}
