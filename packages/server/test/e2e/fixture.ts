import { createServer, type Server } from 'node:http'
import {
  mountShopMcpServer,
  mountTradingMcpServer,
  seedDemo,
  seedTradingDemo,
  type TradingMountOptions,
} from '../../src/cli/commands/demo.js'
import type { ConfigInput } from '../../src/config/schema.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { listen, type RunningServer } from '../../src/server.js'
import { createSqliteDatabase, type TestDatabase } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type BrowserResult, signInAndConsent } from '../helpers/sign-in.js'
import { freePort } from '../interop/fixture.js'

/**
 * `deputy demo` on a real socket: Deputy with the demo seeded and mcp.shop mounted through the
 * demo command's own seam, on http://127.0.0.1:<port>, which is the issuer byte for byte (the
 * clients compare it, RFC 8414 §3.3 and RFC 9207). Nothing of Deputy or the shop is replaced.
 */
export interface ShopDemo {
  issuer: string
  /** The URL to paste into an MCP client. */
  mcpUrl: string
  deputy: TestDeputy
  person: { email: string; password: string }
  /** The demo person's `sub`. */
  personId: string
  /** Stops the server and closes the database, keeping its file. */
  stop(): Promise<void>
  /** Starts Deputy again on the same database, port and master key (a restart). */
  restart(): Promise<ShopDemo>
  /** Stops and removes the database. */
  close(): Promise<void>
}

interface Kept {
  port: number
  database: TestDatabase
  masterKey: string
  password?: string
}

export function startShopDemo(config: ConfigInput = {}, kept?: Kept): Promise<ShopDemo> {
  return startDemo(config, kept, false) as Promise<ShopDemo>
}

/** `deputy demo trading` on a real socket: the shop's demo plus the trading server beside it. */
export interface TradingDemo extends ShopDemo {
  /** The trading server's MCP URL (`<issuer>/trading/mcp`). */
  tradingUrl: string
  restart(): Promise<TradingDemo>
}

export function startTradingDemo(
  config: ConfigInput = {},
  options: TradingMountOptions = {},
): Promise<TradingDemo> {
  return startDemo(config, undefined, options) as Promise<TradingDemo>
}

async function startDemo(
  config: ConfigInput,
  kept: Kept | undefined,
  /** The trading server's mount options, when it is served too. */
  trading: TradingMountOptions | false,
): Promise<ShopDemo | TradingDemo> {
  const port = kept?.port ?? (await freePort())
  const issuer = `http://127.0.0.1:${port}`
  const database = kept?.database ?? (await createSqliteDatabase())
  const masterKey = kept?.masterKey ?? generateMasterKey()
  const deputy = await startTestDeputy({
    database,
    config: { issuer, host: '127.0.0.1', port, masterKey, ...config },
  })
  let server: RunningServer | undefined
  try {
    const seed = await seedDemo(deputy.deps, issuer)
    const password = seed.person.created ? seed.person.password : kept?.password
    if (password === undefined) throw new Error('the demo person exists but its password is lost')
    if (!(await mountShopMcpServer(deputy.app, deputy.deps, seed.resource)))
      throw new Error('mcp.shop was not mounted: build the workspace first (npm run build)')
    const tradingSeed = trading ? await seedTradingDemo(deputy.deps, issuer) : undefined
    if (
      trading &&
      tradingSeed !== undefined &&
      !(await mountTradingMcpServer(deputy.app, deputy.deps, tradingSeed.resource, trading))
    )
      throw new Error(
        'the trading server was not mounted: build the workspace first (npm run build)',
      )
    server = await listen(deputy, { port, host: '127.0.0.1' })
    const running = server
    const person = await deputy.deps.users.findByEmail(seed.person.email)
    if (!person) throw new Error('the demo person was not seeded')
    const stop = async () => {
      await running.shutdown()
    }
    return {
      issuer,
      mcpUrl: seed.resource.uri,
      ...(tradingSeed !== undefined && { tradingUrl: tradingSeed.resource.uri }),
      deputy,
      person: { email: seed.person.email, password },
      personId: person.id,
      stop,
      restart: async () => {
        await stop()
        return startDemo(config, { port, database, masterKey, password }, trading)
      },
      close: async () => {
        await stop()
        await database.dispose()
      },
    }
  } catch (err) {
    if (server) await server.shutdown()
    else await deputy.close()
    await database.dispose()
    throw err
  }
}

/** A Client ID Metadata Document served on loopback, as an MCP client publishes its own. */
export interface ClientMetadataHost {
  /** The document's URL: the client's `client_id`. */
  clientId: string
  redirectUri: string
  /** How many times Deputy fetched the document. */
  fetches(): number
  close(): Promise<void>
}

export async function serveClientMetadata(clientName: string): Promise<ClientMetadataHost> {
  const redirectUri = `http://127.0.0.1:${await freePort()}/callback`
  let count = 0
  let clientId = ''
  const server: Server = createServer((req, res) => {
    if (req.url !== '/oauth/client.json') {
      res.writeHead(404).end()
      return
    }
    count++
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' })
    res.end(
      JSON.stringify({
        client_id: clientId,
        client_name: clientName,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    )
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  clientId = `http://127.0.0.1:${port}/oauth/client.json`
  return {
    clientId,
    redirectUri,
    fetches: () => count,
    close: () => new Promise<void>((done) => server.close(() => done())),
  }
}

/** One HTTP exchange the MCP client made with the shop: what a proxy between them would log. */
export interface Exchange {
  method: string
  url: string
  status: number
  wwwAuthenticate: string | null
}

/** A `fetch` for the SDK transports that records every exchange with the MCP endpoint. */
export function recordingFetch(log: Exchange[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init)
    const url = input instanceof Request ? input.url : String(input)
    log.push({
      method: init?.method ?? (input instanceof Request ? input.method : 'GET'),
      url,
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
    })
    return response
  }
}

/**
 * The person's part of an authorization: open the URL the SDK handed `redirectToAuthorization`,
 * sign in on Deputy's real page and press Allow on the real consent page; the redirect to the
 * client's loopback URI is caught and returned, not loaded.
 */
export function authorizeInBrowser(
  authorizationUrl: URL | undefined,
  redirectUri: string,
  person: { email: string; password: string },
): Promise<BrowserResult> {
  if (authorizationUrl === undefined)
    throw new Error('the client did not ask to open an authorization URL')
  return signInAndConsent(authorizationUrl, redirectUri, person)
}
