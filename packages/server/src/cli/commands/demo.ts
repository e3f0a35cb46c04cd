import { Argument, type Command } from 'commander'
import type { Hono } from 'hono'
import type { Actor } from '../../audit/types.js'
import type { DeputyDeps } from '../../deputy.js'
import type { AppEnv } from '../../http/env.js'
import { DeputyError } from '../../lib/errors.js'
import { randomToken } from '../../lib/random.js'
import { type McpToolCallEvent, toolCallAuditor } from '../../mcp-state/audit-bridge.js'
import { CIBA_GRANT_TYPE } from '../../oauth/clients.js'
import type { Resource } from '../../oauth/resources.js'
import type { ActionDeclaration } from '../../policy/types.js'
import { addServeOptions, type StartOptions, serveDeputy } from './start.js'

/** The shop's scopes and the sentences the consent page shows for them. */
export const DEMO_SCOPES: Record<string, string> = {
  'shop:read': "See the shop's inventory and your orders",
  'shop:order': 'Order T-shirts for you',
  'shop:admin': "See your account details and switch the shop's demo mode",
}
/** The person's claims copied into the shop's access tokens; getUserInfo shows them. */
export const DEMO_CLAIMS_TEMPLATE = ['name', 'email', 'roles', 'permissions', 'favorite_song']
export const DEMO_ROLE = 'shop-admin'
export const DEMO_PERMISSION = 'shop:admin'
export const DEMO_EMAIL = 'demo@mcp.shop'
export const DEMO_NAME = 'Demo Shopper'
export const DEMO_CLAIMS = { favorite_song: 'Careless Whisper' }

const DEMO_ACTOR: Actor = { type: 'system', id: 'deputy', label: 'deputy demo' }

/** The resource indicator of the shop's MCP endpoint under this Deputy. */
export function demoResourceUri(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/mcp`
}

/** The trading server's scopes and the consent page's sentences for them. */
export const TRADING_DEMO_SCOPES: Record<string, string> = {
  'trading:read': 'See stock prices and your portfolio',
  'trading:trade':
    'Buy and sell stocks for you (a large buy, or one of a restricted stock, waits for your approval)',
}
/** The person's claims copied into the trading server's access tokens. */
export const TRADING_DEMO_CLAIMS_TEMPLATE = ['name', 'email']
/** The demo person's trading limit: a buy that could cost more waits for their approval. */
export const DEMO_TRADING_LIMIT_CENTS = 100_000

/** The resource indicator of the trading server's MCP endpoint under this Deputy. */
export function tradingResourceUri(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/trading/mcp`
}

/** What seeding found or made; `password` only when the person was created just now. */
export interface DemoSeed {
  resource: Resource
  resourceChange: 'created' | 'updated' | 'unchanged'
  roleCreated: boolean
  person: { email: string; created: true; password: string } | { email: string; created: false }
}

function sameResource(a: Resource, want: Omit<Resource, 'uri'>): boolean {
  const scopes = (s: Record<string, string>) => JSON.stringify(Object.entries(s).sort())
  return (
    a.name === want.name &&
    a.isDefault === want.isDefault &&
    scopes(a.scopes) === scopes(want.scopes) &&
    JSON.stringify(a.claimsTemplate) === JSON.stringify(want.claimsTemplate)
  )
}

/**
 * Seeds what the mcp.shop demo needs, idempotently: the shop's resource (the default, so a client
 * that sends no `resource` still gets a token for the shop), the `shop-admin` role with the
 * `shop:admin` permission, and a demo person with that role and a favourite song. Whatever exists
 * is left as it is — a person's password above all, which is shown only when it is generated.
 */
export async function seedDemo(deps: DeputyDeps, issuer: string): Promise<DemoSeed> {
  const uri = demoResourceUri(issuer)
  const want = {
    name: 'mcp.shop',
    scopes: DEMO_SCOPES,
    claimsTemplate: DEMO_CLAIMS_TEMPLATE,
    isDefault: true,
  }
  const existing = await deps.resources.get(uri)
  let resource = existing
  let resourceChange: DemoSeed['resourceChange'] = 'unchanged'
  if (!existing || !sameResource(existing, want)) {
    resource = await deps.resources.put({ uri, ...want }, DEMO_ACTOR)
    resourceChange = existing ? 'updated' : 'created'
  }

  const { roles } = deps
  let roleCreated = false
  if (!(await roles.find(DEMO_ROLE))) {
    try {
      await roles.add(
        {
          name: DEMO_ROLE,
          description: 'mcp.shop administrators (the demo)',
          permissions: [DEMO_PERMISSION],
        },
        DEMO_ACTOR,
      )
      roleCreated = true
    } catch (err) {
      // Another process seeding the same database made it first.
      if ((err as { code?: string }).code !== 'ERR_CONFLICT') throw err
    }
  }

  let person: DemoSeed['person'] = { email: DEMO_EMAIL, created: false }
  if (!(await deps.users.findByEmail(DEMO_EMAIL))) {
    const password = randomToken(18)
    try {
      await deps.users.create(
        {
          email: DEMO_EMAIL,
          name: DEMO_NAME,
          password,
          roles: [DEMO_ROLE],
          claims: DEMO_CLAIMS,
        },
        DEMO_ACTOR,
      )
      person = { email: DEMO_EMAIL, created: true, password }
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_CONFLICT') throw err
    }
  }
  return { resource: resource as Resource, resourceChange, roleCreated, person }
}

/** What seeding the trading demo found or made. */
export interface TradingDemoSeed {
  resource: Resource
  resourceChange: DemoSeed['resourceChange']
  /** The demo person's limit, when the trading package is there to keep it. */
  limit: { limitCents: number; set: boolean } | undefined
}

/**
 * Seeds what the trading demo needs beside mcp.shop's (run {@link seedDemo} first: it makes the
 * demo person), idempotently: the trading server's resource (not the default: the shop keeps
 * that) and the demo person's trading limit, $1,000, in their state at the trading server unless
 * they have one.
 */
export async function seedTradingDemo(deps: DeputyDeps, issuer: string): Promise<TradingDemoSeed> {
  const uri = tradingResourceUri(issuer)
  const want = {
    name: 'Trading (demo)',
    scopes: TRADING_DEMO_SCOPES,
    claimsTemplate: TRADING_DEMO_CLAIMS_TEMPLATE,
    isDefault: false,
  }
  const existing = await deps.resources.get(uri)
  let resource = existing
  let resourceChange: DemoSeed['resourceChange'] = 'unchanged'
  if (!existing || !sameResource(existing, want)) {
    resource = await deps.resources.put({ uri, ...want }, DEMO_ACTOR)
    resourceChange = existing ? 'updated' : 'created'
  }
  const tradingPackage = await loadTradingPackage()
  const person = await deps.users.findByEmail(DEMO_EMAIL)
  const limit =
    tradingPackage === undefined || !person
      ? undefined
      : await tradingPackage.ensureTradingLimit(
          deps,
          { resource: uri, sub: person.id },
          DEMO_TRADING_LIMIT_CENTS,
        )
  return { resource: resource as Resource, resourceChange, limit }
}

/** Mounts an MCP server into Deputy's app; resolves to true when something was mounted. */
export type McpMount = (app: Hono<AppEnv>, deps: DeputyDeps, resource: Resource) => Promise<boolean>

/** The package that holds mcp.shop (examples/mcp-shop). */
export const SHOP_PACKAGE = '@deputy/example-mcp-shop'

/** An example's MCP server as the demo mounts it (the kit's `ProtectedMcpServer`, restated: it is not typed here). */
interface ExampleServer {
  fetch(request: Request): Promise<Response>
  resourceMetadataUrl: string
  actions(): ActionDeclaration[]
}

/** What the demo needs of the shop package; checked when it is loaded, since it is not typed here. */
interface ShopPackage {
  createDeputyShop(options: {
    deps: DeputyDeps
    resource: string
    issuer: string
    fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
    audit: (event: McpToolCallEvent) => Promise<void>
  }): ExampleServer
  installShopPolicies(deps: DeputyDeps, shop: ExampleServer): Promise<unknown>
}

/**
 * Loads an example at run time, when it has the functions the demo calls. The examples depend on
 * the server, so the server cannot depend on them when it is built; a server installed without
 * an example (or before it is built) runs the demo without it and says so.
 */
async function loadExample<T>(
  name: string,
  functions: (keyof T & string)[],
): Promise<T | undefined> {
  // A variable, so tsc neither resolves nor type-checks the package when building the server.
  const specifier: string = name
  let loaded: Record<string, unknown>
  try {
    loaded = (await import(specifier)) as Record<string, unknown>
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' && String(err).includes(name)) return undefined
    throw err
  }
  return functions.every((fn) => typeof loaded[fn] === 'function') ? (loaded as T) : undefined
}

function loadShopPackage(): Promise<ShopPackage | undefined> {
  return loadExample<ShopPackage>(SHOP_PACKAGE, ['createDeputyShop', 'installShopPolicies'])
}

/**
 * Mounts the mcp.shop MCP server (examples/mcp-shop) at the resource's path (`/mcp`) with its
 * RFC 9728 metadata at `/.well-known/oauth-protected-resource/mcp` and the root well-known URL.
 * Tokens are checked by `@deputy/mcp`'s JWT verifier against this Deputy's `/jwks`, fetched
 * in-process through the app; the shop's tools are declared as Cedar actions and its policies
 * (the ban, the admin check) installed unless already stored — an operator's edit is kept;
 * per-person state and orders live in Deputy's database; every tool call is appended to the
 * audit chain.
 */
export const mountShopMcpServer: McpMount = async (app, deps, resource) => {
  const shopPackage = await loadShopPackage()
  if (shopPackage === undefined) return false
  const issuer = deps.config.issuer
  const shop = shopPackage.createDeputyShop({
    deps,
    resource: resource.uri,
    issuer,
    fetch: (input, init) => Promise.resolve(app.request(input, init)),
    audit: toolCallAuditor(deps),
  })
  // Before the first request: a call to an undeclared action could not be decided.
  await shopPackage.installShopPolicies(deps, shop)
  const serve = (c: { req: { raw: Request } }) => shop.fetch(c.req.raw)
  const paths = new Set([
    new URL(resource.uri).pathname,
    new URL(shop.resourceMetadataUrl).pathname,
    '/.well-known/oauth-protected-resource',
  ])
  for (const path of paths) app.all(path, serve)
  return true
}

/** The package that holds the trading agent's MCP server (examples/trading). */
export const TRADING_PACKAGE = '@deputy/example-trading'

/** The name of the trading server's CIBA client, the one it asks the person's approval as. */
export const TRADING_APPROVALS_CLIENT_NAME = 'Trading (demo) MCP server'

/** What the demo needs of the trading package; checked when it is loaded. */
interface TradingPackage {
  createDeputyTrading(options: {
    deps: DeputyDeps
    resource: string
    issuer: string
    fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
    approvals: { issuer: string; clientId: string; clientSecret: string; waitSeconds?: number }
    audit: (event: McpToolCallEvent) => Promise<void>
  }): ExampleServer
  installTradingPolicies(deps: DeputyDeps, server: ExampleServer): Promise<unknown>
  ensureTradingLimit(
    deps: DeputyDeps,
    scope: { resource: string; sub: string },
    limitCents: number,
  ): Promise<{ limitCents: number; set: boolean }>
}

function loadTradingPackage(): Promise<TradingPackage | undefined> {
  return loadExample<TradingPackage>(TRADING_PACKAGE, [
    'createDeputyTrading',
    'installTradingPolicies',
    'ensureTradingLimit',
  ])
}

/**
 * The trading server's confidential CIBA client at this Deputy, registered anew at each start
 * (the one of the start before is deleted): Deputy keeps only a digest of a client secret, and
 * the server needs the secret itself. A request still pending at a restart is then asked again.
 */
async function tradingApprovalsClient(
  deps: DeputyDeps,
  resource: Resource,
): Promise<{ clientId: string; clientSecret: string }> {
  for (const client of await deps.clients.list()) {
    if (
      client.name === TRADING_APPROVALS_CLIENT_NAME &&
      client.grantTypes.includes(CIBA_GRANT_TYPE)
    )
      await deps.clients.delete(client.clientId, DEMO_ACTOR)
  }
  const created = await deps.clients.register(
    {
      name: TRADING_APPROVALS_CLIENT_NAME,
      grantTypes: [CIBA_GRANT_TYPE],
      allowedResources: [resource.uri],
    },
    DEMO_ACTOR,
  )
  if (created.clientSecret === undefined) throw new Error('the CIBA client was given no secret')
  return { clientId: created.client.clientId, clientSecret: created.clientSecret }
}

/** Options of {@link mountTradingMcpServer}. */
export interface TradingMountOptions {
  /**
   * How long a held buy waits for the person's decision (with progress notifications) before it
   * answers that the approval is pending, with the page; default the kit's (30 seconds).
   */
  approvalWaitSeconds?: number
}

/**
 * Mounts the trading agent's MCP server (examples/trading) at its resource's path
 * (`/trading/mcp`) with its RFC 9728 metadata at `/.well-known/oauth-protected-resource/trading/mcp`
 * (the root well-known URL stays the shop's). As for the shop: tokens checked against this
 * Deputy's `/jwks` in-process, its tools declared as Cedar actions and its policies (which buys
 * wait for approval) installed unless already stored, portfolios in Deputy's database, every tool
 * call in the audit chain. A buy the policies hold asks the person through Deputy's CIBA endpoint
 * as the server's own client, and runs once they approve it.
 */
export async function mountTradingMcpServer(
  app: Hono<AppEnv>,
  deps: DeputyDeps,
  resource: Resource,
  options: TradingMountOptions = {},
): Promise<boolean> {
  const tradingPackage = await loadTradingPackage()
  if (tradingPackage === undefined) return false
  const issuer = deps.config.issuer
  const client = await tradingApprovalsClient(deps, resource)
  const server = tradingPackage.createDeputyTrading({
    deps,
    resource: resource.uri,
    issuer,
    fetch: (input, init) => Promise.resolve(app.request(input, init)),
    approvals: {
      issuer,
      ...client,
      ...(options.approvalWaitSeconds !== undefined && {
        waitSeconds: options.approvalWaitSeconds,
      }),
    },
    audit: toolCallAuditor(deps),
  })
  await tradingPackage.installTradingPolicies(deps, server)
  const serve = (c: { req: { raw: Request } }) => server.fetch(c.req.raw)
  for (const path of new Set([
    new URL(resource.uri).pathname,
    new URL(server.resourceMetadataUrl).pathname,
  ]))
    app.all(path, serve)
  return true
}

const USD = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' })

/** The banner lines of the trading demo: where to point the MCP client, and what waits for approval. */
export function tradingDemoLines(
  seed: TradingDemoSeed,
  issuer: string,
  mounted: boolean,
): string[] {
  const seeded = [
    `resource ${seed.resourceChange === 'unchanged' ? 'already there' : seed.resourceChange}`,
    ...(seed.limit === undefined
      ? []
      : [
          `${DEMO_EMAIL}'s limit ${USD.format(seed.limit.limitCents / 100)} (${seed.limit.set ? 'set now' : 'already there'})`,
        ]),
  ]
  return [
    '',
    "trading demo (the Auth0 talk's trading agent)",
    `  MCP server URL: ${seed.resource.uri}`,
    ...(mounted
      ? [
          `    Sign in as ${DEMO_EMAIL}, as for the shop. A buy that could cost more than the person's`,
          '    limit, or of a restricted stock, waits for their approval (Cedar policies',
          '    trading.over-limit and trading.restricted-stock: deputy policy show <id>); they',
          `    decide at ${issuer}/approvals, and the buy runs once, with exactly what they approved.`,
        ]
      : [
          `    (the trading server is not installed or not built, so ${new URL(seed.resource.uri).pathname} answers 404:`,
          `    run \`npm run build\` in Deputy's repository, or install ${TRADING_PACKAGE} beside @deputy/server.)`,
        ]),
    `  seeded:         ${seeded.join(', ')}`,
  ]
}

/** The banner lines of the demo: where to point the MCP client and how to sign in. */
export function demoLines(seed: DemoSeed, issuer: string, mounted: boolean): string[] {
  const seeded = [
    `resource ${seed.resourceChange === 'unchanged' ? 'already there' : seed.resourceChange}`,
    `role ${DEMO_ROLE} ${seed.roleCreated ? 'created' : 'already there'}`,
    `person ${DEMO_EMAIL} ${seed.person.created ? 'created' : 'already there'}`,
  ]
  const lines = [
    '',
    'mcp.shop demo',
    `  MCP server URL: ${seed.resource.uri}`,
    '    Add it to your MCP client (Claude, Cursor, MCP Inspector) as a remote server; the client',
    '    opens a browser for you to sign in and agree to what it may do.',
    ...(mounted
      ? []
      : [
          `    (mcp.shop is not installed or not built, so /mcp answers 404: run \`npm run build\` in`,
          `    Deputy's repository, or install ${SHOP_PACKAGE} beside @deputy/server.)`,
        ]),
    `  seeded:         ${seeded.join(', ')}`,
  ]
  if (seed.person.created) {
    lines.push(
      `  Sign in as the demo shopper at ${issuer}/login (or when your MCP client asks)`,
      `  email:      ${seed.person.email}`,
      `  password:   ${seed.person.password}`,
      '  This password is shown only once. Change it with:',
      `    deputy users set-password ${seed.person.email} --password-stdin`,
    )
  } else {
    lines.push(
      `  Sign in as ${seed.person.email} with the password shown when it was created, or set a new one:`,
      `    deputy users set-password ${seed.person.email} --password-stdin`,
    )
  }
  return lines
}

/** The demos `deputy demo <name>` serves beside mcp.shop. */
export const EXTRA_DEMOS = ['trading'] as const

/**
 * `deputy demo [trading]`: seeds the mcp.shop demo and serves Deputy, as `deputy start` does;
 * `deputy demo trading` also seeds and serves the trading agent beside the shop.
 */
export function registerDemo(program: Command): void {
  addServeOptions(
    program
      .command('demo')
      .description(
        'seed the mcp.shop demo (resource, role, demo person) and start Deputy; `demo trading` adds the trading agent',
      )
      .addArgument(
        new Argument('[demo]', 'also serve this demo beside mcp.shop').choices(EXTRA_DEMOS),
      ),
    { production: false },
  ).action((demo: (typeof EXTRA_DEMOS)[number] | undefined, opts: StartOptions, command: Command) =>
    serveDeputy(command, opts, async (deputy, config) => {
      // The demo prints a password to the terminal; that is fine on a laptop, not in production.
      if (config.mode === 'production')
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'deputy demo does not run in production mode (it prints a password); use deputy start',
        )
      const seed = await seedDemo(deputy.deps, config.issuer)
      const mounted = await mountShopMcpServer(deputy.app, deputy.deps, seed.resource)
      const lines = demoLines(seed, config.issuer, mounted)
      if (demo !== 'trading') return lines
      const trading = await seedTradingDemo(deputy.deps, config.issuer)
      const tradingMounted = await mountTradingMcpServer(deputy.app, deputy.deps, trading.resource)
      return [...lines, ...tradingDemoLines(trading, config.issuer, tradingMounted)]
    }),
  )
}
