import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jwtVerifier, protectMcpServer } from '../src/index.js'
import { makeKey, startAuthorizationServer, startMcpServer } from './helpers.js'

const CHROMIUM = process.env.DEPUTY_TEST_CHROMIUM ?? '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)

/** What Chromium sends when a person opens an address. */
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'

let resource: string
let origin: string
let issuer: string

beforeAll(async () => {
  const as = await startAuthorizationServer()
  as.state.keys = [await makeKey('rs-1')]
  issuer = as.issuer
  ;({ resource, origin } = await startMcpServer((resource) => {
    const kit = protectMcpServer({
      resource,
      authorizationServers: [as.issuer],
      verifier: jwtVerifier({ issuer: as.issuer, jwksUri: as.jwksUri, audience: resource }),
      server: { name: 'rs', version: '1.0.0' },
      // A name with markup in it: the page must show it as text.
      resourceName: 'Tom & Jerry <b>Shop</b>',
    })
    kit.tool('ping', { scopes: ['shop.read'] }, {}, () => ({
      content: [{ type: 'text', text: 'pong' }],
    }))
    return kit
  }))
})

const metadataUrl = () => `${origin}/.well-known/oauth-protected-resource/mcp`
// The Bearer challenge, then DPoP with the proof algorithms it takes (RFC 9449 §7.1).
const bareChallenge = () =>
  `Bearer resource_metadata="${metadataUrl()}", scope="shop.read", DPoP algs="ES256 ES384 ES512 EdDSA Ed25519 RS256 RS384 RS512 PS256 PS384 PS512"`

// Issue 10 §7: a person who opens the MCP URL in a browser learns what it is and how to add it.
describe('a browser opening the MCP URL without a token', () => {
  it('gets the usual 401 and challenge, with a page saying what this is and how to add it', async () => {
    const response = await fetch(resource, { headers: { accept: BROWSER_ACCEPT } })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe(bareChallenge())
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(response.headers.get('cache-control')).toBe('no-store')
    const html = await response.text()
    expect(html).toContain('<h1>Tom &amp; Jerry &lt;b&gt;Shop&lt;/b&gt;</h1>')
    expect(html).not.toContain('<b>Shop</b>')
    expect(html).toContain('This is an <strong>MCP server</strong> protected by Deputy')
    expect(html).toContain(`<pre class="url"><code>${resource}</code></pre>`)
    expect(html).toContain(`claude mcp add --transport http tom-jerry-b-shop-b ${resource}`)
    expect(html).toContain('&quot;type&quot;: &quot;http&quot;')
    expect(html).toContain('npx @modelcontextprotocol/inspector')
    expect(html).toContain(`<li><code>${issuer}</code></li>`)
    expect(html).toContain(`href="${metadataUrl()}"`)
    expect(html).not.toMatch(/<script|\son\w+=/i)
  })

  it('has a strict CSP: nothing loads, no script, only the page’s own style block by hash', async () => {
    const response = await fetch(resource, { headers: { accept: BROWSER_ACCEPT } })
    const csp = response.headers.get('content-security-policy') ?? ''
    expect(csp).toMatch(
      /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]{43}='; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
    )
    const html = await response.text()
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? ''
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(style))
    expect(csp).toContain(`'sha256-${Buffer.from(digest).toString('base64')}'`)
  })

  it('MCP clients are answered exactly as before', async () => {
    // An event-stream GET (the standalone SSE stream) and a JSON-RPC POST: bare 401, empty body.
    const sse = await fetch(resource, { headers: { accept: 'text/event-stream' } })
    expect(sse.status).toBe(401)
    expect(sse.headers.get('www-authenticate')).toBe(bareChallenge())
    expect(await sse.text()).toBe('')
    const post = await fetch(resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(post.status).toBe(401)
    expect(await post.text()).toBe('')
    // A browser that does send a (bad) token gets the protocol's error, not the page.
    const bad = await fetch(resource, {
      headers: { accept: BROWSER_ACCEPT, authorization: 'Bearer not.a.token' },
    })
    expect(bad.status).toBe(401)
    expect(bad.headers.get('content-type')).toBe('application/json')
    expect(await bad.json()).toMatchObject({ error: 'invalid_token' })
  })

  describe.skipIf(!hasChromium)('in a real browser (Chromium)', () => {
    let browser: Browser
    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      })
    })
    afterAll(async () => {
      await browser?.close()
    })

    it('shows the page, styled under its CSP, with the URL to paste', async () => {
      const page = await browser.newPage()
      const refused: string[] = []
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) refused.push(message.text())
      })
      const response = await page.goto(resource)
      expect(response?.status()).toBe(401)
      await expect(page.title()).resolves.toBe('Tom & Jerry <b>Shop</b> · MCP server')
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(
        'Tom & Jerry <b>Shop</b>',
      )
      await expect(page.locator('pre.url').textContent()).resolves.toBe(resource)
      // The style block applied (its hash is in the CSP): the body is 40rem wide at most.
      const maxWidth = await page.locator('body').evaluate((b) => getComputedStyle(b).maxWidth)
      expect(maxWidth).toBe('640px')
      expect(refused).toEqual([])
      await page.close()
    })
  })
})
