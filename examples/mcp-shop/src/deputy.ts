import { readFile } from 'node:fs/promises'
import { type AuditHook, type FetchLike, jwtVerifier, type ProtectedMcpServer } from '@deputy/mcp'
import { type Actor, createSqlUserStateStore, type DeputyDeps } from '@deputy/server'
import { createShopMcpServer, SHOP_POLICIES_URL } from './mcp.js'
import { createSqlOrderBook } from './storage.js'

/** Options of {@link createDeputyShop}. */
export interface DeputyShopOptions {
  /**
   * The Deputy the shop lives in: its database holds the orders and the per-person state, and
   * its policy engine (`policy`) decides the tools' rules with the shop's Cedar policies.
   */
  deps: Pick<DeputyDeps, 'store' | 'db' | 'clock' | 'logger' | 'policy'>
  /** The shop's resource indicator, `<issuer>/mcp` in the demo. */
  resource: string
  /** Deputy's issuer: tokens must come from it, and its keys are at `<issuer>/jwks`. */
  issuer: string
  /**
   * How the token verifier reaches `<issuer>/jwks`; the demo passes Deputy's app so the keys are
   * read in-process, through the same JWKS document and verifier any other resource server uses.
   */
  fetch?: FetchLike
  /** Every tool call, for Deputy's audit chain. */
  audit?: AuditHook
}

/**
 * mcp.shop as a resource server of a Deputy: tokens checked by `@deputy/mcp`'s JWT verifier
 * against Deputy's JWKS with `aud` = the shop, the ban and the admin check decided by Deputy's
 * Cedar engine (install the policies with {@link installShopPolicies}), per-person state in
 * Deputy's SQL store (so a ban survives restarts and new client connections), orders in Deputy's
 * database.
 */
export function createDeputyShop(options: DeputyShopOptions): ProtectedMcpServer {
  const { deps, resource, issuer } = options
  const issuerBase = issuer.replace(/\/$/, '')
  return createShopMcpServer({
    resource,
    issuer,
    verifier: jwtVerifier({
      issuer,
      audience: resource,
      jwksUri: `${issuerBase}/jwks`,
      ...(options.fetch !== undefined && { fetch: options.fetch }),
    }),
    stateStore: createSqlUserStateStore({ store: deps.store, clock: deps.clock }),
    orderBook: createSqlOrderBook({ db: deps.db, resource, now: () => deps.clock.now() }),
    policy: deps.policy,
    ...(options.audit !== undefined && { audit: options.audit }),
    onError: (error) => deps.logger.error({ err: error }, 'mcp.shop'),
  })
}

/**
 * The Cedar text of the shop's policies (`policies/mcp-shop.cedar`) as written: each action is
 * named `Deputy::Action::"{resource}#<tool>"`, the shop's resource yet to be put in.
 */
export function readShopPolicies(): Promise<string> {
  return readFile(SHOP_POLICIES_URL, 'utf8')
}

/** Where the shop's policies write its resource indicator, inside an action's id. */
const RESOURCE_PLACEHOLDER = /(Deputy::Action::")\{resource\}/g

/**
 * The shop's policies for the shop at `resource`: its actions are `<resource>#<tool>` and its
 * action group `<resource>` (issue 9 §9), so they decide this shop's tools and no other
 * server's tools of the same names.
 */
export async function shopPolicies(resource: string): Promise<string> {
  // A Cedar string literal: a resource indicator has neither quotes nor backslashes, but the
  // text must stay a valid policy whatever it is given.
  const literal = resource.replace(/[\\"]/g, (c) => `\\${c}`)
  return (await readShopPolicies()).replace(RESOURCE_PLACEHOLDER, (_, prefix) => prefix + literal)
}

/** What {@link installShopPolicies} did. */
export interface ShopPoliciesInstall {
  /** The actions declared: the shop's tools (their names). */
  actions: string[]
  /** Policies stored now, because Deputy had never had them. */
  installed: string[]
  /** Policies left as they are: stored before (perhaps edited by an operator) or removed by one. */
  kept: string[]
}

async function historyOf(policies: DeputyDeps['policies'], id: string): Promise<unknown[]> {
  try {
    return await policies.history(id)
  } catch (err) {
    // A policy Deputy has never had may be answered as not found rather than with no history.
    if ((err as { code?: string }).code === 'ERR_NOT_FOUND') return []
    throw err
  }
}

const SHOP_ACTOR: Actor = { type: 'system', id: 'mcp-shop', label: 'mcp.shop' }

/**
 * Makes Deputy ready to decide the shop's tool calls: declares the shop's tools as Cedar actions
 * (with their arguments and the `demoMode` state), then stores each policy of
 * `policies/mcp-shop.cedar`, for this shop's resource, that Deputy has never had. A policy with any history — edited or
 * removed by an operator — is left alone: start-up never undoes an operator's change. Finally the
 * engine reloads, so the first call is decided with these policies.
 */
export async function installShopPolicies(
  deps: Pick<DeputyDeps, 'policies' | 'policy'>,
  shop: Pick<ProtectedMcpServer, 'actions'>,
  actor: Actor = SHOP_ACTOR,
): Promise<ShopPoliciesInstall> {
  const actions = shop.actions()
  const [resource] = new Set(actions.map((action) => action.resource))
  if (resource === undefined)
    throw new Error('the shop declares no actions: create it with a policy decision point')
  await deps.policies.declareActions(actions, actor)
  const validation = await deps.policies.validate(await shopPolicies(resource))
  if (!validation.ok) {
    const [first] = validation.problems
    throw new Error(
      `policies/mcp-shop.cedar does not validate: ${first?.line}:${first?.column} ${first?.message}`,
    )
  }
  const installed: string[] = []
  const kept: string[] = []
  const missing: string[] = []
  for (const policy of validation.policies) {
    if ((await historyOf(deps.policies, policy.id)).length > 0) kept.push(policy.id)
    else {
      installed.push(policy.id)
      missing.push(policy.text)
    }
  }
  // One write for all of them: one new policy-set version, and all or nothing.
  if (missing.length > 0) await deps.policies.put(missing.join('\n\n'), actor)
  await deps.policy.refresh()
  return { actions: actions.map((action) => action.name), installed, kept }
}
