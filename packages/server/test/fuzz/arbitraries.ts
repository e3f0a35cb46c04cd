import fc from 'fast-check'
import { type FuzzRequest, type FuzzTarget, REDIRECT, RESOURCE } from './fixture.js'

/**
 * Generators of hostile input for the HTTP fuzz suites: odd strings, JWT look-alikes, bad
 * Authorization and DPoP headers, malformed, oversized and deeply nested bodies. Each generator
 * mixes the plainly broken with the nearly valid (real client ids, real grant types), so a request
 * gets past the first check often enough to reach the code behind it.
 */

/** Parameter names the endpoints read (RFC 6749, 7009, 7591, 7662, 8693, 9126, 9396, CIBA, forms). */
export const PARAM_NAMES = [
  'grant_type',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'code',
  'code_verifier',
  'code_challenge',
  'code_challenge_method',
  'redirect_uri',
  'refresh_token',
  'scope',
  'resource',
  'audience',
  'token',
  'token_type_hint',
  'assertion',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'connection',
  'auth_req_id',
  'response_type',
  'response_mode',
  'state',
  'nonce',
  'prompt',
  'request',
  'request_uri',
  'authorization_details',
  'login_hint',
  'login_hint_token',
  'id_token_hint',
  'binding_message',
  'client_notification_token',
  'requested_expiry',
  'csrf_token',
  'email',
  'password',
  'return_to',
  'decision',
  'shown_digest',
  'credential_id',
  'current_password',
  'new_password',
  'confirm_password',
  'webhook_url',
  'name',
  'status',
  'role',
  'claims',
  'confirm',
  'redirect_uris',
  'grant_types',
  'token_endpoint_auth_method',
  'jwks',
  'jwks_uri',
  'software_statement',
  'cursor',
  'limit',
  'since',
  'until',
  'type',
  'q',
] as const

const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'password',
  'implicit',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:openid:params:grant-type:ciba',
  'urn:ietf:params:oauth:grant-type:device_code',
]

const TOKEN_TYPES = [
  'urn:ietf:params:oauth:token-type:access_token',
  'urn:ietf:params:oauth:token-type:refresh_token',
  'urn:ietf:params:oauth:token-type:id_token',
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id-jag',
  'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
]

/** Strings that have broken parsers before: empty, NUL, encodings, paths, schemes, numbers. */
const NASTY = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '%00',
  '%zz',
  '%',
  '%E0%A4%A',
  '\uD800',
  '\uFEFF',
  '\u202E',
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '1e308',
  'NaN',
  '9007199254740993',
  '[]',
  '{}',
  '{"a":',
  '__proto__',
  'constructor',
  'toString',
  '../../../etc/passwd',
  'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'file:///etc/passwd',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]:80/',
  'https://',
  'http://user:pass@127.0.0.1:1/',
  'urn:',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  'S256',
  'plain',
  'code',
  'openid profile email',
  'tools:read',
  RESOURCE,
]

const b64url = (value: string | Uint8Array) => Buffer.from(value).toString('base64url')

/** Something that looks like a JWT: odd headers (alg none, kid paths, jwk junk), odd claims, bad signatures. */
export const jwtLike: fc.Arbitrary<string> = fc
  .tuple(
    fc.record(
      {
        alg: fc.constantFrom('none', 'HS256', 'RS256', 'ES256', 'EdDSA', 'PS512', 'x', ''),
        typ: fc.constantFrom('JWT', 'at+jwt', 'dpop+jwt', 'oauth-id-jag+jwt', 'JOSE'),
        kid: fc.oneof(fc.string(), fc.constant('../../../../dev/null')),
        jwk: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record({
            kty: fc.constantFrom('EC', 'RSA', 'OKP', 'oct', 'x'),
            crv: fc.constantFrom('P-256', 'P-384', 'Ed25519', 'x'),
            x: fc.base64String(),
            y: fc.base64String(),
            n: fc.base64String(),
            e: fc.constantFrom('AQAB', ''),
          }),
        ),
        crit: fc.array(fc.string(), { maxLength: 3 }),
        x5c: fc.array(fc.base64String(), { maxLength: 2 }),
      },
      { requiredKeys: ['alg'] },
    ),
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record(
        {
          iss: fc.oneof(fc.string(), fc.constant('http://127.0.0.1:8080'), fc.integer()),
          sub: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
          aud: fc.oneof(fc.string(), fc.array(fc.string()), fc.constant({})),
          exp: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(1e308)),
          iat: fc.oneof(fc.integer(), fc.string()),
          nbf: fc.integer(),
          jti: fc.oneof(fc.string(), fc.integer()),
          htm: fc.oneof(fc.constantFrom('POST', 'GET'), fc.integer()),
          htu: fc.oneof(fc.webUrl(), fc.string()),
          client_id: fc.string(),
          scope: fc.oneof(fc.string(), fc.array(fc.string())),
          cnf: fc.jsonValue({ maxDepth: 2 }),
          act: fc.jsonValue({ maxDepth: 3 }),
        },
        { requiredKeys: [] },
      ),
    ),
    fc.oneof(fc.constant(''), fc.base64String(), fc.string()),
    fc.constantFrom(3, 3, 3, 2, 5),
  )
  .map(([header, payload, signature, parts]) => {
    const all = [b64url(JSON.stringify(header)), b64url(JSON.stringify(payload)), signature]
    while (all.length < parts) all.push(b64url('x'))
    return all.slice(0, parts).join('.')
  })

/** A hostile parameter value. */
export function valueArb(target: FuzzTarget): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string() },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme' }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
    { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
    { weight: 2, arbitrary: fc.constantFrom(...GRANT_TYPES, ...TOKEN_TYPES) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        target.app.clientId,
        target.agent.clientId,
        target.introspector.clientId,
        target.agent.secret,
        REDIRECT,
        `${target.origin}/`,
      ),
    },
    { weight: 2, arbitrary: jwtLike },
    { weight: 1, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom('x', '%', '\u00e9', '{', 'a b'),
          fc.integer({ min: 1000, max: 20_000 }),
        )
        .map(([unit, n]) => unit.repeat(n)),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  )
}

/** Name/value pairs, duplicates and unknown names included. */
export function paramsArb(target: FuzzTarget): fc.Arbitrary<[string, string][]> {
  const name = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...PARAM_NAMES) },
    { weight: 1, arbitrary: fc.string() },
    { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'constructor', 'a[b]', 'a.b', '%00') },
  )
  const pair = fc.tuple(name, valueArb(target))
  return fc.tuple(fc.array(pair, { maxLength: 12 }), fc.boolean()).map(([pairs, duplicate]) => {
    const first = pairs[0]
    return duplicate && first ? [...pairs, first] : pairs
  })
}

/** A raw urlencoded body or query: mostly well formed, sometimes with broken escapes. */
function encodePairs(pairs: [string, string][], broken: boolean): string {
  if (!broken) return new URLSearchParams(pairs).toString()
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

/** JSON nested `depth` deep, arrays or objects. */
function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
}

/** A body with a content type (or none), from plainly broken to nearly valid. */
export function bodyArb(
  target: FuzzTarget,
): fc.Arbitrary<{ contentType?: string; body?: string | Uint8Array }> {
  const form = fc.tuple(paramsArb(target), fc.boolean()).map(([pairs, broken]) => ({
    contentType: 'application/x-www-form-urlencoded',
    body: encodePairs(pairs, broken),
  }))
  const jsonFromParams = paramsArb(target).chain((pairs) =>
    fc
      .array(fc.oneof(fc.jsonValue({ maxDepth: 3 }), valueArb(target)), {
        minLength: pairs.length,
        maxLength: pairs.length,
      })
      .map((values) => ({
        contentType: 'application/json',
        body: JSON.stringify(Object.fromEntries(pairs.map(([k], i) => [k, values[i]]))),
      })),
  )
  const json = fc.jsonValue({ maxDepth: 5 }).map((v) => ({
    contentType: 'application/json',
    body: JSON.stringify(v),
  }))
  const deep = fc
    .tuple(
      fc.integer({ min: 100, max: 20_000 }),
      fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>,
    )
    .map(([depth, kind]) => ({ contentType: 'application/json', body: nested(depth, kind) }))
  const oversized = fc
    .tuple(
      fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain'),
      fc.integer({ min: 64 * 1024 - 16, max: 80 * 1024 }),
    )
    .map(([contentType, n]) => ({
      contentType,
      body: contentType === 'application/json' ? `{"a":"${'x'.repeat(n)}"}` : `a=${'x'.repeat(n)}`,
    }))
  const bytes = fc.uint8Array({ maxLength: 300 }).map((body) => ({
    contentType: 'application/x-www-form-urlencoded',
    body,
  }))
  const oddType = fc
    .tuple(
      fc.constantFrom(
        'multipart/form-data',
        'multipart/form-data; boundary=',
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-16',
        'application/x-www-form-urlencoded; charset=shift_jis',
        'application/jwt',
        'application/jose',
        'text/plain',
        'text/html',
        '*/*',
        ';;;',
        'application/json, application/json',
        'x'.repeat(2000),
      ),
      fc.oneof(
        fc.string(),
        fc.constant('--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--'),
      ),
    )
    .map(([contentType, body]) => ({ contentType, body }))
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant({}) },
    { weight: 5, arbitrary: form },
    { weight: 3, arbitrary: jsonFromParams },
    { weight: 2, arbitrary: json },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: oversized },
    { weight: 1, arbitrary: bytes },
    { weight: 2, arbitrary: oddType },
  )
}

/** Printable header text (fetch refuses control characters in header values). */
const headerText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
})

/** Authorization headers: garbage, broken Basic, real ids with wrong secrets, JWT look-alikes, the admin key. */
export function authorizationArb(target: FuzzTarget): fc.Arbitrary<string | undefined> {
  const basicOf = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: headerText },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.oneof(
            fc.constantFrom(target.agent.clientId, target.introspector.clientId, '%zz', '%', ''),
            fc.string(),
          ),
          fc.oneof(fc.constantFrom(target.agent.secret, '%', '%zz', ''), fc.string()),
        )
        .map(([u, p]) => basicOf(u, p)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'Basic',
        'Basic ',
        'Basic !!!',
        'Basic =',
        `Basic ${Buffer.from('no-colon').toString('base64')}`,
        'Bearer',
        'Bearer ',
        'DPoP',
        'Bearer a b c',
        'bearer x',
        `Bearer ${target.adminKey}`,
        `Bearer ${target.adminKey}x`,
        `Basic ${target.adminKey}`,
      ),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('Bearer', 'DPoP', 'bearer'), jwtLike)
        .map(([scheme, token]) => `${scheme} ${token}`),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1000, max: 12_000 }).map((n) => `Bearer ${'a'.repeat(n)}`),
    },
  )
}

/** A DPoP header: absent mostly, else garbage, a JWT look-alike, or two proofs. */
export const dpopArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 5, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: headerText },
  { weight: 3, arbitrary: jwtLike },
  { weight: 1, arbitrary: fc.tuple(jwtLike, jwtLike).map(([a, b]) => `${a}, ${b}`) },
)

/** Cookies: none, the admin's real session, or junk. */
export function cookieArb(target: FuzzTarget): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constant(target.sessionCookie) },
    { weight: 1, arbitrary: headerText },
    {
      weight: 1,
      arbitrary: headerText.map((v) => `${target.sessionCookie.split('=')[0]}=${v}`),
    },
  )
}

/** Odd extra headers: a long one, odd Accept, odd Origin, forwarded addresses. */
const extraHeadersArb = fc.record(
  {
    accept: fc.constantFrom(
      'text/html',
      'application/json',
      '*/*',
      'text/event-stream',
      ';q=x',
      '',
    ),
    origin: fc.constantFrom('null', 'http://evil.example', 'http://127.0.0.1:8080'),
    'x-forwarded-for': fc.constantFrom('1.2.3.4', '::1', 'garbage', '1.2.3.4, 5.6.7.8'),
    'x-long': fc.integer({ min: 1000, max: 8000 }).map((n) => 'h'.repeat(n)),
    'if-none-match': headerText,
    'mcp-session-id': headerText,
  },
  { requiredKeys: [] },
)

/** A path template (`/admin/api/clients/:id`) with its parameters filled in with odd segments. */
function pathArb(template: string): fc.Arbitrary<string> {
  const names = template.match(/:[A-Za-z0-9_]+(\{[^}]*\})?/g) ?? []
  const segment = fc.oneof(
    fc.string({ minLength: 1 }).map((s) => encodeURIComponent(s)),
    fc.constantFrom('..', '%2e%2e', '%2F', '%00', '%zz', 'x'.repeat(3000), '0', '-1', 'null'),
  )
  return fc.array(segment, { minLength: names.length, maxLength: names.length }).map((values) => {
    let path = template
    names.forEach((name, i) => {
      path = path.replace(name, values[i] ?? 'x')
    })
    return path
  })
}

const ODD_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND']

/** A whole hostile request aimed at one route. */
export function requestArb(
  target: FuzzTarget,
  route: { method: string; path: string },
): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      method: fc.oneof(
        { weight: 5, arbitrary: fc.constant(route.method) },
        { weight: 1, arbitrary: fc.constantFrom(...ODD_METHODS) },
      ),
      path: pathArb(route.path),
      query: fc.option(
        fc
          .tuple(paramsArb(target), fc.boolean())
          .map(([pairs, broken]) => encodePairs(pairs, broken)),
        { freq: 2 },
      ),
      body: bodyArb(target),
      authorization: authorizationArb(target),
      dpop: dpopArb,
      cookie: cookieArb(target),
      extra: extraHeadersArb,
    })
    .map(({ method, path, query, body, authorization, dpop, cookie, extra }) => {
      const headers: Record<string, string> = { ...extra }
      if (authorization !== undefined) headers.authorization = authorization
      if (dpop !== undefined) headers.dpop = dpop
      if (cookie !== undefined) headers.cookie = cookie
      const hasBody = method !== 'GET' && method !== 'HEAD' && body.body !== undefined
      if (hasBody && body.contentType) headers['content-type'] = body.contentType
      return {
        method,
        path: query ? `${path}?${query}` : path,
        headers,
        ...(hasBody && { body: body.body }),
      }
    })
}
