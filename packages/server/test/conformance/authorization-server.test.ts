import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import { listen, type RunningServer } from '../../src/server.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { signInAndConsent } from '../helpers/sign-in.js'
import {
  assertRunnerInstalled,
  freePort,
  notPassed,
  type RunnerProcess,
  readChecks,
  startAuthorizationRunner,
} from './runner.js'

/**
 * The official MCP conformance runner's `authorization` command against a real Deputy on a real
 * socket (modelcontextprotocol/conformance, src/scenarios/authorization-server/*). Its browser
 * step is taken here through Deputy's own sign-in and consent pages, as plain form posts.
 * The runner is required: when it is not installed this suite fails and says how to install it.
 */

const ACTOR: Actor = { type: 'system', id: 'conformance' }
const PERSON = {
  email: 'runner@example.com',
  name: 'Conformance Runner',
  password: 'a-long-test-password-1',
}
const RESOURCE = 'http://127.0.0.1:9999/mcp'

describe('MCP conformance runner: authorization server (RFC 8414, OAuth 2.1 §4.1)', () => {
  let deputy: TestDeputy
  let server: RunningServer
  let issuer: string
  let callbackPort: number
  let clientId: string
  const outputs: string[] = []
  const runners: RunnerProcess[] = []

  beforeAll(async () => {
    assertRunnerInstalled()
    // The issuer must equal the runner's --url exactly, so the port is chosen before Deputy starts.
    const port = await freePort()
    issuer = `http://127.0.0.1:${port}`
    deputy = await startTestDeputy({ config: { issuer, host: '127.0.0.1', port } })
    server = await listen(deputy, { port, host: '127.0.0.1' })
    expect(server.url).toBe(issuer)

    callbackPort = await freePort()
    await deputy.deps.users.create(PERSON, ACTOR)
    await deputy.deps.resources.put(
      {
        uri: RESOURCE,
        name: 'Conformance MCP server',
        scopes: { 'mcp:read': 'Read' },
        isDefault: true,
      },
      ACTOR,
    )
    // A public client: the runner picks `none` whenever no secret is given (or `none` is
    // advertised), sending only client_id and the PKCE verifier to the token endpoint.
    const { client } = await deputy.deps.clients.register(
      {
        name: 'MCP conformance runner',
        public: true,
        redirectUris: [`http://127.0.0.1:${callbackPort}/callback`],
        grantTypes: ['authorization_code'],
      },
      ACTOR,
    )
    clientId = client.clientId
  })

  afterAll(async () => {
    for (const runner of runners) runner.kill()
    for (const dir of outputs) rmSync(dir, { recursive: true, force: true })
    await server?.shutdown()
    await deputy?.database.dispose()
  })

  function run(scenario?: string): { runner: RunnerProcess; outputDir: string } {
    const outputDir = mkdtempSync(join(tmpdir(), 'deputy-conformance-'))
    outputs.push(outputDir)
    const runner = startAuthorizationRunner({ issuer, clientId, callbackPort, outputDir, scenario })
    runners.push(runner)
    return { runner, outputDir }
  }

  function report(runner: RunnerProcess, extra = ''): string {
    return `${extra}\n--- runner output ---\n${runner.output()}`
  }

  it('authorization-server-metadata-endpoint: metadata at /.well-known/oauth-authorization-server, issuer equal to --url', async () => {
    const { runner, outputDir } = run('authorization-server-metadata-endpoint')
    const code = await runner.exited(60_000)
    const checks = readChecks(outputDir)
    expect([...checks.keys()], report(runner)).toEqual(['authorization-server-metadata-endpoint'])
    expect(notPassed(checks), report(runner)).toEqual([])
    // Includes the 2025-11-25 SHOULD: client_id_metadata_document_supported (a WARNING if absent).
    expect(checks.get('authorization-server-metadata-endpoint')?.map((c) => c.id)).toEqual([
      'authorization-server-metadata',
      'authorization-server-metadata-cimd',
    ])
    expect(code, report(runner)).toBe(0)
  }, 90_000)

  it('authorization-code-grant: authorize, sign in and consent on the real pages, code to token', async () => {
    // No --scenario: the grant scenario reads the endpoints from the metadata scenario's result.
    const { runner, outputDir } = run()
    const callbackOrigin = `http://127.0.0.1:${callbackPort}`
    let authorizeUrl: URL
    try {
      await runner.waitForLine(/^Access the following URL/, 60_000)
      authorizeUrl = new URL(await runner.waitForLine(/^https?:\/\//, 5_000))
      // Its callback server says so once it listens; the redirect must not arrive before.
      await runner.waitForLine(/^Callback server started/, 10_000)
    } catch (err) {
      runner.kill()
      throw new Error(report(runner, (err as Error).message))
    }
    expect(authorizeUrl.origin).toBe(issuer)

    // 1. The authorization request: Deputy sends a person without a session to sign in; 2. the
    // sign-in page (the CSRF token and return_to ride along as hidden fields); 3. the consent
    // page, Allow pressed; 4. the redirect back to the runner, which exchanges the code itself.
    const redirectUri =
      authorizeUrl.searchParams.get('redirect_uri') ?? `${callbackOrigin}/callback`
    let trail = ''
    try {
      const walk = await signInAndConsent(authorizeUrl, redirectUri, PERSON)
      trail = walk.trail.join('\n')
      expect(walk.callback.origin, trail).toBe(callbackOrigin)
      expect(walk.callback.pathname).toBe('/callback')
      expect(walk.callback.searchParams.get('code'), trail).toBeTruthy()
      // The person was asked: first to sign in, then to consent (nothing was auto-approved).
      expect(
        walk.visits.map((v) => v.kind),
        trail,
      ).toEqual(['login', 'consent'])
      const callback = await fetch(walk.callback, { redirect: 'manual' })
      expect(callback.status).toBe(200)
    } catch (err) {
      runner.kill()
      throw new Error(report(runner, `${(err as Error).message}\n--- browser ---\n${trail}`))
    }

    const code = await runner.exited(60_000)
    const checks = readChecks(outputDir)
    expect([...checks.keys()].sort(), report(runner)).toEqual([
      'authorization-code-grant',
      'authorization-server-metadata-endpoint',
    ])
    expect(notPassed(checks), report(runner)).toEqual([])
    expect(checks.get('authorization-code-grant')?.map((c) => [c.id, c.status])).toEqual([
      ['authorization-code-grant', 'SUCCESS'],
    ])
    expect(code, report(runner)).toBe(0)
  }, 150_000)
})
