import { decodeJwt } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  authorizeQuery,
  type Browser,
  decide,
  type Fixture,
  pkce,
  redirected,
  SHOP,
  signedIn,
  startFixture,
} from './authorize-fixture.js'

// RFC 9396 Rich Authorization Requests at /authorize (issue 11 §2): details are checked against
// the types the resource accepts, the consent page shows them in words, and the grant carries
// them into the token response, the JWT and introspection.

const SYSTEM = { type: 'system', id: 'test' } as const
const ORDER = { type: 'shirt_order', size: 'M', quantity: 2 }

describe('authorization_details at /authorize (RFC 9396)', () => {
  let f: Fixture
  let b: Browser
  beforeEach(async () => {
    f = await startFixture()
    b = await signedIn(f.deputy)
    await f.deputy.deps.detailTypes.put(
      {
        resource: SHOP,
        type: 'shirt_order',
        description: 'An order of shirts',
        template: 'Order {quantity} shirts in size {size}',
        schema: {
          type: 'object',
          properties: {
            type: { const: 'shirt_order' },
            size: { enum: ['S', 'M', 'L'] },
            quantity: { type: 'integer', minimum: 1, maximum: 10 },
          },
          required: ['type', 'size', 'quantity'],
          additionalProperties: false,
        },
      },
      SYSTEM,
    )
  })
  afterEach(() => f.deputy.dispose())

  it('shows the details in words on the consent page, every time, and carries them into the tokens', async () => {
    const { verifier, challenge } = pkce()
    const query = authorizeQuery(f.app, {
      code_challenge: challenge,
      authorization_details: JSON.stringify([ORDER]),
    })
    const page = await b.get(`/authorize?${query}`)
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).toContain('Order 2 shirts in size M')
    expect(html).toContain('&quot;shirt_order&quot;')
    const allowed = await decide(b, html, 'allow')
    const code = redirected(allowed).params.get('code') as string
    const token = await f.deputy.app.request('/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: 'https://app.example/cb',
        code_verifier: verifier,
        client_id: f.app.clientId,
      }),
    })
    expect(token.status).toBe(200)
    const body = (await token.json()) as { access_token: string; authorization_details: unknown }
    expect(body.authorization_details).toEqual([ORDER])
    expect(decodeJwt(body.access_token).authorization_details).toEqual([ORDER])

    // Consent to the scope is remembered, but details are one transaction's: asked again.
    const again = await b.get(
      `/authorize?${authorizeQuery(f.app, { authorization_details: JSON.stringify([ORDER]) })}`,
    )
    expect(again.status).toBe(200)
    expect(await again.text()).toContain('Order 2 shirts in size M')
  })

  it.each([
    ['not JSON', '[{'],
    ['an unknown type', JSON.stringify([{ type: 'wire_transfer' }])],
    ['a field outside its schema', JSON.stringify([{ ...ORDER, quantity: 99 }])],
    ['an extra field', JSON.stringify([{ ...ORDER, colour: 'red' }])],
  ])(
    'refuses details that are %s with invalid_authorization_details, back to the client',
    async (_case, value) => {
      const response = await b.get(
        `/authorize?${authorizeQuery(f.app, { authorization_details: value })}`,
      )
      expect(response.status).toBe(303)
      const { base, params } = redirected(response)
      expect(base).toBe('https://app.example/cb')
      expect(params.get('error')).toBe('invalid_authorization_details')
      expect(params.get('state')).toBe('st-123')
    },
  )

  it('escapes what a detail says on the consent page', async () => {
    await f.deputy.deps.detailTypes.put(
      {
        resource: SHOP,
        type: 'note',
        description: 'A note',
        template: 'Write {text}',
        schema: { type: 'object', properties: { text: { type: 'string' } } },
      },
      SYSTEM,
    )
    const page = await b.get(
      `/authorize?${authorizeQuery(f.app, { authorization_details: JSON.stringify([{ type: 'note', text: '<script>alert(1)</script>' }]) })}`,
    )
    const html = await page.text()
    expect(html).not.toContain('<script>alert(1)</script>')
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
  })
})
