import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import type { ConfigInput } from '../../src/config/schema.js'
import { listen, type RunningServer } from '../../src/server.js'
import type { TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { hiddenField, parseForms, socketBrowser } from '../helpers/sign-in.js'
import { startUpstreamApi, type UpstreamApi } from '../helpers/upstream-api.js'
import {
  followUpstreamLogin,
  startUpstreamProvider,
  type UpstreamProvider,
  type UpstreamProviderOptions,
} from '../helpers/upstream-provider.js'

export const SYSTEM = { type: 'system', id: 'test' } as const
export const ALICE = {
  email: 'alice@example.com',
  name: 'Alice',
  password: 'correct horse battery',
}
/** The provider's name in Deputy (URLs, the vault). */
export const PROVIDER = 'corp'

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** A clock that runs with real time plus an offset a test can push forward (back-off). */
export function offsetClock() {
  let offset = 0
  return {
    now: () => new Date(Date.now() + offset),
    advance(ms: number) {
      offset += ms
    },
  }
}

export interface VaultFixture {
  upstream: UpstreamProvider
  api: UpstreamApi
  deputy: TestDeputy
  server: RunningServer
  clock: ReturnType<typeof offsetClock>
  aliceId: string
  /** A signed-in browser (cookie jar) for Alice at Deputy over a real socket. */
  browser: ReturnType<typeof socketBrowser>
  close(): Promise<void>
}

/**
 * A local OpenID provider (node-oidc-provider) with a stand-in API that trusts its tokens, and a
 * Deputy listening on 127.0.0.1 with that provider added for connecting (type oidc), Alice
 * signed in.
 */
export async function startVaultFixture(
  options: {
    database?: TestDatabase
    upstream?: UpstreamProviderOptions
    config?: ConfigInput
    /** Serve at the issuer's own address (a real browser follows the provider back there). */
    atIssuer?: boolean
    /** Where Deputy listens (default any free port); a test whose issuer names the port sets it. */
    port?: number
  } = {},
): Promise<VaultFixture> {
  const port = options.port ?? (options.atIssuer ? await freePort() : 0)
  const upstream = await startUpstreamProvider(options.upstream)
  const api = await startUpstreamApi({ provider: upstream })
  const clock = offsetClock()
  const deputy = await startTestDeputy({
    clock,
    ...(options.database ? { database: options.database } : {}),
    config: {
      dangerouslyAllowHttpLoopbackProviders: true,
      ...(port ? { issuer: `http://127.0.0.1:${port}` } : {}),
      ...options.config,
    },
  })
  const { deps } = deputy
  const alice = await deps.users.create(ALICE, SYSTEM)
  await deps.providers.add(
    {
      name: PROVIDER,
      type: 'oidc',
      displayName: 'Corp',
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
      issuer: upstream.issuer,
      uses: ['connect'],
      scopes: ['openid', 'email'],
    },
    SYSTEM,
  )
  const server = await listen(deputy, { port, host: '127.0.0.1' })
  const browser = socketBrowser(server.url)
  const signedIn = await browser.signIn(ALICE.email, ALICE.password)
  if (signedIn.status !== 303) throw new Error(`sign-in answered ${signedIn.status}`)
  return {
    upstream,
    api,
    deputy,
    server,
    clock,
    aliceId: alice.id,
    browser,
    async close() {
      await server.shutdown()
      await deputy.database.dispose()
      await api.close()
      await upstream.close()
    },
  }
}

/**
 * What the person does with a connect link: opens it, presses "Continue" on Deputy's page, signs
 * in at the provider (scripted), and comes back through the callback. Returns the callback's
 * answer (a redirect to return_to or the connections page), or the first answer that was not
 * the expected step.
 */
export async function connectThroughLink(
  browser: VaultFixture['browser'],
  link: string,
): Promise<Response> {
  const page = await browser.get(link)
  if (page.status !== 200) return page
  const html = await page.text()
  const form = parseForms(html).find((f) => f.action.startsWith('/connect/'))
  if (!form) throw new Error(`no connect form on the page: ${html.slice(0, 300)}`)
  const started = await browser.post(form.action, Object.fromEntries(form.fields))
  if (started.status !== 303) return started
  return finishAtProvider(browser, started)
}

/** Follows the redirect to the provider and brings its answer back to Deputy's callback. */
export async function finishAtProvider(
  browser: VaultFixture['browser'],
  started: Response,
): Promise<Response> {
  const location = started.headers.get('location')
  if (!location) throw new Error('no redirect to the provider')
  const back = await followUpstreamLogin(location)
  // The issuer is http://localhost:8080; Deputy itself listens on the socket the browser uses.
  return browser.get(`${back.pathname}${back.search}`)
}

/** The session's CSRF token, as a form on the connections page carries it. */
export async function connectionsCsrf(browser: VaultFixture['browser']): Promise<string> {
  const page = await browser.get('/account/connections')
  return hiddenField(await page.text(), 'csrf_token')
}
