import fc from 'fast-check'
import { bodyArb, dpopArb, jwtLike, valueArb } from './arbitraries.js'
import { type FuzzRequest, type FuzzTarget, REDIRECT, RESOURCE, VERIFIER } from './fixture.js'

/**
 * Nearly valid requests: each scenario is a request that would succeed (a real client, real
 * credentials, a real token), and the generator breaks a few of its parts at a time: a parameter
 * dropped, repeated, or given a hostile value or a JSON type it does not expect, extra
 * parameters, a broken body or credential. So the fuzzing reaches the grant handlers, the token
 * checks and the admin API's validation, not only the first "grant_type is required".
 */

/** How a scenario's parameters travel. */
type Encoding = 'form' | 'json' | 'query'

export interface Scenario {
  name: string
  method: string
  path: string
  encoding: Encoding
  params: Record<string, string | unknown>
  headers: Record<string, string>
  /** The endpoint's JSON errors carry OAuth error codes. */
  oauth: boolean
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

/** The scenarios, one or more per endpoint and grant type. */
export function scenarios(t: FuzzTarget): Scenario[] {
  const agent = { authorization: basic(t.agent.clientId, t.agent.secret) }
  const introspector = { authorization: basic(t.introspector.clientId, t.introspector.secret) }
  const ciba = { authorization: basic(t.ciba.clientId, t.ciba.secret) }
  const admin = { authorization: `Bearer ${t.adminKey}` }
  const session = { cookie: t.sessionCookie, origin: t.origin }
  const token = (name: string, params: Record<string, string>, headers = {}): Scenario => ({
    name: `POST /token ${name}`,
    method: 'POST',
    path: '/token',
    encoding: 'form',
    params,
    headers,
    oauth: true,
  })
  const exchange = 'urn:ietf:params:oauth:grant-type:token-exchange'
  const accessType = 'urn:ietf:params:oauth:token-type:access_token'
  return [
    token(
      'client_credentials',
      { grant_type: 'client_credentials', scope: 'tools:read', resource: RESOURCE },
      agent,
    ),
    token('authorization_code', {
      grant_type: 'authorization_code',
      code: 'not-a-code',
      code_verifier: VERIFIER,
      redirect_uri: REDIRECT,
      client_id: t.app.clientId,
    }),
    token('refresh_token', {
      grant_type: 'refresh_token',
      refresh_token: t.tokens.refresh,
      client_id: t.app.clientId,
      scope: 'tools:read',
    }),
    token(
      'token-exchange',
      {
        grant_type: exchange,
        subject_token: t.tokens.personAccess,
        subject_token_type: accessType,
        actor_token: t.tokens.agentAccess,
        actor_token_type: accessType,
        resource: RESOURCE,
        audience: RESOURCE,
        requested_token_type: accessType,
      },
      agent,
    ),
    token('jwt-bearer', {
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: 'x.y.z',
      client_id: t.agent.clientId,
    }),
    token('ciba', { grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: 'x' }, ciba),
    token('private_key_jwt', {
      grant_type: 'client_credentials',
      client_id: t.agent.clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: 'x.y.z',
    }),
    {
      name: 'POST /introspect',
      method: 'POST',
      path: '/introspect',
      encoding: 'form',
      params: { token: t.tokens.personAccess, token_type_hint: 'access_token' },
      headers: introspector,
      oauth: true,
    },
    {
      name: 'POST /revoke',
      method: 'POST',
      path: '/revoke',
      encoding: 'form',
      params: { token: t.tokens.agentAccess, token_type_hint: 'refresh_token' },
      headers: agent,
      oauth: true,
    },
    {
      name: 'POST /register',
      method: 'POST',
      path: '/register',
      encoding: 'json',
      params: {
        client_name: 'Fuzzed',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        scope: 'tools:read',
        client_uri: 'https://app.example',
        logo_uri: 'https://app.example/logo.png',
        application_type: 'native',
        jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] },
        software_statement: 'x.y.z',
      },
      headers: {},
      oauth: true,
    },
    {
      name: 'POST /bc-authorize',
      method: 'POST',
      path: '/bc-authorize',
      encoding: 'form',
      params: {
        scope: 'openid tools:read',
        login_hint: 'root@example.com',
        binding_message: 'W4SCT',
        requested_expiry: '120',
        authorization_details: JSON.stringify([
          { type: 'tool_call', server: RESOURCE, tool: 'echo', arguments: { text: 'hi' } },
        ]),
        resource: RESOURCE,
      },
      headers: ciba,
      oauth: true,
    },
    {
      name: 'GET /authorize',
      method: 'GET',
      path: '/authorize',
      encoding: 'query',
      params: {
        response_type: 'code',
        client_id: t.app.clientId,
        redirect_uri: REDIRECT,
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
        scope: 'openid tools:read',
        state: 's',
        resource: RESOURCE,
        authorization_details: JSON.stringify([{ type: 'tool_call' }]),
      },
      headers: session,
      oauth: false,
    },
    {
      name: 'GET /userinfo',
      method: 'GET',
      path: '/userinfo',
      encoding: 'query',
      params: {},
      headers: { authorization: `Bearer ${t.tokens.personAccess}` },
      oauth: false,
    },
    {
      name: 'POST /login',
      method: 'POST',
      path: '/login',
      encoding: 'form',
      params: {
        csrf_token: t.login.csrfToken,
        email: 'root@example.com',
        password: 'wrong',
        return_to: '/account',
      },
      headers: { cookie: t.login.cookie, origin: t.origin },
      oauth: false,
    },
    {
      name: 'POST /admin/api/clients',
      method: 'POST',
      path: '/admin/api/clients',
      encoding: 'json',
      params: {
        name: 'Made',
        redirect_uris: [REDIRECT],
        grant_types: ['client_credentials'],
        allowed_scopes: ['tools:read'],
      },
      headers: admin,
      oauth: false,
    },
    {
      name: 'POST /admin/api/users',
      method: 'POST',
      path: '/admin/api/users',
      encoding: 'json',
      params: { email: 'new@example.com', name: 'New', roles: ['admin'], claims: { a: 1 } },
      headers: admin,
      oauth: false,
    },
    {
      name: 'POST /admin/api/policies',
      method: 'POST',
      path: '/admin/api/policies',
      encoding: 'json',
      params: {
        id: 'p-1',
        text: 'permit (principal, action, resource);',
      },
      headers: admin,
      oauth: false,
    },
    {
      name: 'POST /admin/api/policy/explain',
      method: 'POST',
      path: '/admin/api/policy/explain',
      encoding: 'json',
      params: {
        person: 'root@example.com',
        client_id: t.agent.clientId,
        action: 'tools/call',
        resource: RESOURCE,
        arguments: { n: 1, nested: { deep: [1, 2] } },
        state: { mode: 'x' },
        scopes: ['tools:read'],
        approved: false,
      },
      headers: admin,
      oauth: false,
    },
    {
      name: 'POST /admin/api/relations',
      method: 'POST',
      path: '/admin/api/relations',
      encoding: 'json',
      params: {
        tuples: [
          {
            object: { type: 'doc', id: '1' },
            relation: 'viewer',
            subject: { type: 'user', id: 'a' },
          },
        ],
      },
      headers: admin,
      oauth: false,
    },
    {
      name: 'POST /admin/people (console form)',
      method: 'POST',
      path: '/admin/people',
      encoding: 'form',
      params: {
        csrf_token: t.csrfToken,
        email: 'p@example.com',
        name: 'P',
        password: 'a long passphrase',
      },
      headers: session,
      oauth: false,
    },
  ]
}

/** Hostile replacements for a JSON field: wrong types, nesting, huge strings. */
function jsonValueArb(t: FuzzTarget): fc.Arbitrary<unknown> {
  return fc.oneof(
    valueArb(t),
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(null, true, 0, -1, 1e308, [], {}, [null], { __proto__: { admin: true } }),
    fc.array(valueArb(t), { maxLength: 5 }),
    // Deep nesting inside a field: recursive validators, canonical JSON and copies walk it.
    fc
      .tuple(fc.integer({ min: 500, max: 10_000 }), fc.boolean())
      .map(([depth, array]) => deepValue(depth, array)),
  )
}

/**
 * A value nested `depth` deep (within the 64 KiB body limit at 10,000 arrays). It stands in the
 * parameters as a marker that `stringify` writes out as text: building and serialising the value
 * itself would overflow this process's stack before the server ever saw it.
 */
function deepValue(depth: number, array: boolean): string {
  return `${DEEP}${depth}:${array ? 'a' : 'o'}`
}

const DEEP = '\u0001deep:'

/** JSON.stringify, with deep-value markers written out as nested JSON. */
function stringify(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0001deep:(\d+):([ao])"/g, (_, depth, kind) => {
    const n = Number(depth)
    return kind === 'a'
      ? `${'['.repeat(n)}1${']'.repeat(n)}`
      : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`
  })
}

type Edit =
  | { kind: 'keep' }
  | { kind: 'drop' }
  | { kind: 'twice' }
  | { kind: 'set'; value: unknown }

/** A scenario's request with a few parts broken. */
export function mutatedArb(t: FuzzTarget, s: Scenario): fc.Arbitrary<FuzzRequest> {
  const keys = Object.keys(s.params)
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    { weight: 8, arbitrary: fc.constant({ kind: 'keep' } as Edit) },
    { weight: 1, arbitrary: fc.constant({ kind: 'drop' } as Edit) },
    { weight: 1, arbitrary: fc.constant({ kind: 'twice' } as Edit) },
    {
      weight: 3,
      arbitrary: (s.encoding === 'json' ? jsonValueArb(t) : valueArb(t)).map(
        (value) => ({ kind: 'set', value }) as Edit,
      ),
    },
  )
  const extras = fc.array(
    fc.tuple(fc.constantFrom('resource', 'scope', 'client_id', 'x', 'dpop_jkt'), valueArb(t)),
    {
      maxLength: 3,
    },
  )
  const header = fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: jwtLike.map((j) => `Bearer ${j}`) },
    { weight: 1, arbitrary: valueArb(t).filter((v) => /^[\x20-\x7e]*$/.test(v)) },
  )
  return fc
    .record({
      edits: fc.array(edit, { minLength: keys.length, maxLength: keys.length }),
      extras,
      authorization: header,
      dpop: dpopArb,
      // Now and then the whole body is replaced by one of the generic hostile bodies.
      replaceBody: fc.option(bodyArb(t), { freq: 6 }),
    })
    .map(({ edits, extras, authorization, dpop, replaceBody }) => {
      const pairs: [string, unknown][] = []
      keys.forEach((key, i) => {
        const e = edits[i] ?? { kind: 'keep' }
        const value = s.params[key]
        if (e.kind === 'drop') return
        if (e.kind === 'set') pairs.push([key, e.value])
        else pairs.push([key, value])
        if (e.kind === 'twice') pairs.push([key, value])
      })
      pairs.push(...extras)
      const headers: Record<string, string> = { ...s.headers }
      if (authorization !== undefined) headers.authorization = authorization
      if (dpop !== undefined) headers.dpop = dpop
      if (replaceBody && s.encoding !== 'query') {
        if (replaceBody.contentType) headers['content-type'] = replaceBody.contentType
        return { method: s.method, path: s.path, headers, body: replaceBody.body }
      }
      return build(s, pairs, headers)
    })
}

const text = (v: unknown) => (typeof v === 'string' ? v : stringify(v))

/** A scenario's request from its parameters, encoded the way the scenario says. */
function build(
  s: Scenario,
  pairs: [string, unknown][],
  headers: Record<string, string>,
): FuzzRequest {
  const form = () => new URLSearchParams(pairs.map(([k, v]) => [k, text(v)] as [string, string]))
  if (s.encoding === 'query') return { method: s.method, path: `${s.path}?${form()}`, headers }
  if (s.encoding === 'json') {
    return {
      method: s.method,
      path: s.path,
      headers: { ...headers, 'content-type': 'application/json' },
      body: stringify(Object.fromEntries(pairs)),
    }
  }
  return {
    method: s.method,
    path: s.path,
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    body: form().toString(),
  }
}

/** The scenario's request as written, nothing broken. */
export function unbroken(s: Scenario): FuzzRequest {
  return build(s, Object.entries(s.params), { ...s.headers })
}
