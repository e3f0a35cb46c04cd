import { describe, expect, it } from 'vitest'
import { matchRedirectUri, redirectUriProblem } from '../../src/oauth/redirect-uris.js'

describe('redirect URI registration (RFC 6749 §3.1.2, OAuth 2.1 §2.3.1, RFC 8252 §7)', () => {
  it.each([
    'https://app.example/cb',
    'https://app.example/cb?tenant=1',
    'http://127.0.0.1:3000/callback',
    'http://[::1]/cb',
    'http://localhost:8080/cb',
    'com.example.app:/oauth2redirect',
    // Real MCP clients' private-use schemes (Cursor, VS Code) are not reverse-domain.
    'cursor://anysphere.cursor-retrieval/oauth/user-deputy/callback',
    'vscode://vscode.github-authentication/did-authenticate',
    'myapp://cb',
  ])('accepts %s', (uri) => {
    expect(redirectUriProblem(uri)).toBeNull()
  })

  it.each([
    ['javascript:alert(1)', /forbidden scheme javascript:/],
    ['data:text/html,hi', /forbidden scheme data:/],
    ['file:///etc/passwd', /forbidden scheme file:/],
    ['http://app.example/cb', /http only on a loopback host/],
    ['http://127.0.0.1.evil.example/cb', /http only on a loopback host/],
    ['https://app.example/cb#x', /fragment/],
    ['https://*.app.example/cb', /wildcards/],
    ['https://app.example@evil.example/cb', /user information/],
    ['cb', /not an absolute URI/],
    ['vbscript:msgbox(1)', /forbidden scheme vbscript:/],
    [' https://app.example/cb', /spaces, control characters/],
    ['https://app.example/c\tb', /spaces, control characters/],
    ['https://app.example\\cb', /backslashes/],
    ['https://App.Example/cb', /normalised form \(https:\/\/app\.example\/cb\)/],
    ['https://app.example/a/../cb', /normalised form/],
    ['https://app.example:443/cb', /normalised form/],
  ])('refuses %s', (uri, problem) => {
    expect(redirectUriProblem(uri)).toMatch(problem)
  })
})

describe('redirect URI matching (RFC 9700 §4.1.3; perf-security §7 tests 1–2)', () => {
  const registered = ['https://app.example/cb', 'http://127.0.0.1/cb']

  it('matches the exact string, and a loopback redirect on any port', () => {
    expect(matchRedirectUri(registered, 'https://app.example/cb')).toBe(true)
    expect(matchRedirectUri(registered, 'http://127.0.0.1:51234/cb')).toBe(true)
  })

  it.each([
    'https://app.example/cb/',
    'https://app.example/cbx',
    'https://app.example/c',
    'https://app.example/cb/../cb',
    'https://app.example/cb%2F..%2F',
    'https://app.example/%252fcb',
    'https://app.example/cb..;/',
    'https://app.example\\cb',
    'https://APP.example/cb',
    'https://app.example/cb?x=1',
    'https://app.example/cb#f',
    'https://app.example@evil.example/cb',
    'https://app.example.evil.example/cb',
    'http://127.0.0.1:51234/other',
    'http://127.0.0.1.evil.example/cb',
    'http://localhost@evil.example/cb',
    'http://127.0.0.1:51234/cb?x=1',
    'http://user@127.0.0.1:51234/cb',
  ])('refuses %s', (requested) => {
    expect(matchRedirectUri(registered, requested)).toBe(false)
  })
})
