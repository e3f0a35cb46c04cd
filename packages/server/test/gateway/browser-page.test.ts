import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpUpstream } from '../../src/gateway/upstream-http.js'
import { startHttpUpstream } from './fixtures/upstream.mjs'
import { startGateway, startIssuer } from './helpers.js'

type Issuer = Awaited<ReturnType<typeof startIssuer>>
type Upstream = Awaited<ReturnType<typeof startHttpUpstream>>
type Running = Awaited<ReturnType<typeof startGateway>>

let issuer: Issuer
let upstream: Upstream
let gw: Running

beforeAll(async () => {
  issuer = await startIssuer()
  upstream = await startHttpUpstream()
  gw = await startGateway({ issuer: issuer.issuer, upstream: httpUpstream({ url: upstream.url }) })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await issuer?.close()
})

// Issue 10 §7: the gateway's MCP URL, opened in a browser, says what it is, like the kit's.
describe('a browser opening the gateway’s MCP URL without a token', () => {
  it('gets the 401 challenge with the page naming the URL to add to a client', async () => {
    const response = await fetch(gw.resource, {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata="/)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(response.headers.get('content-security-policy')).toMatch(/^default-src 'none'; /)
    const html = await response.text()
    expect(html).toContain(`<h1>MCP server at ${new URL(gw.resource).host}</h1>`)
    expect(html).toContain(`<pre class="url"><code>${gw.resource}</code></pre>`)
    expect(html).toContain(`<li><code>${issuer.issuer}</code></li>`)
  })

  it('an MCP client still gets the bare challenge, and no call is recorded', async () => {
    const response = await fetch(gw.resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    expect(response.status).toBe(401)
    expect(await response.text()).toBe('')
    expect(gw.events).toEqual([])
  })
})
