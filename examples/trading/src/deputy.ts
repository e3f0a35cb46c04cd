import { readFile } from 'node:fs/promises'
import {
  type AuditHook,
  type FetchLike,
  jwtVerifier,
  type ProtectedMcpServer,
  type ToolApprovalOptions,
} from '@deputy/mcp'
import {
  type Actor,
  createSqlUserStateStore,
  type DeputyDeps,
  type UserStateScope,
} from '@deputy/server'
import { createTradingMcpServer, TRADING_POLICIES_URL } from './mcp.js'
import { LIMIT_KEY, parseLimit } from './trading.js'

/** Options of {@link createDeputyTrading}. */
export interface DeputyTradingOptions {
  /**
   * The Deputy the server lives in: its database holds each person's portfolio, cash and limit
   * (per-person state), and its policy engine (`policy`) decides every call with the trading
   * policies.
   */
  deps: Pick<DeputyDeps, 'store' | 'clock' | 'logger' | 'policy'>
  /** The server's resource indicator, `<issuer>/trading/mcp` in the demo. */
  resource: string
  /** Deputy's issuer: tokens must come from it, and its keys are at `<issuer>/jwks`. */
  issuer: string
  /** How the token verifier reaches `<issuer>/jwks`; the demo passes Deputy's app (in-process). */
  fetch?: FetchLike
  /**
   * How buys held for approval ask the person: the server's confidential CIBA client at this
   * Deputy (`deputy demo trading` registers one); without it they are refused as needing approval.
   */
  approvals?: ToolApprovalOptions
  /** Every tool call, for Deputy's audit chain. */
  audit?: AuditHook
}

/**
 * The trading server as a resource server of a Deputy: tokens checked by `@deputy/mcp`'s JWT
 * verifier against Deputy's JWKS with `aud` = the server, every call decided by Deputy's Cedar
 * engine (install the policies with {@link installTradingPolicies}), portfolios in Deputy's SQL
 * per-person state, so they outlive restarts and are the same on every replica.
 */
export function createDeputyTrading(options: DeputyTradingOptions): ProtectedMcpServer {
  const { deps, resource, issuer } = options
  return createTradingMcpServer({
    resource,
    issuer,
    verifier: jwtVerifier({
      issuer,
      audience: resource,
      jwksUri: `${issuer.replace(/\/$/, '')}/jwks`,
      ...(options.fetch !== undefined && { fetch: options.fetch }),
    }),
    stateStore: createSqlUserStateStore({ store: deps.store, clock: deps.clock }),
    policy: deps.policy,
    now: () => deps.clock.now(),
    ...(options.approvals !== undefined && { approvals: options.approvals }),
    ...(options.audit !== undefined && { audit: options.audit }),
    onError: (error) => deps.logger.error({ err: error }, 'trading'),
  })
}

/**
 * The Cedar text of the trading policies (`policies/trading.cedar`) as written, the server's
 * resource yet to be put in for `{resource}`.
 */
export function readTradingPolicies(): Promise<string> {
  return readFile(TRADING_POLICIES_URL, 'utf8')
}

/** Where the policies write the resource indicator, inside an action's id. */
const RESOURCE_PLACEHOLDER = /(Deputy::Action::")\{resource\}/g

/**
 * The trading policies for the server at `resource`: its actions are `<resource>#<tool>` and its
 * action group `<resource>`, so they decide this server's tools and no other's.
 */
export async function tradingPolicies(resource: string): Promise<string> {
  // A Cedar string literal, whatever it is given.
  const literal = resource.replace(/[\\"]/g, (c) => `\\${c}`)
  return (await readTradingPolicies()).replace(
    RESOURCE_PLACEHOLDER,
    (_, prefix) => prefix + literal,
  )
}

/** What {@link installTradingPolicies} did. */
export interface TradingPoliciesInstall {
  /** The actions declared: the server's tools (their names). */
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
    if ((err as { code?: string }).code === 'ERR_NOT_FOUND') return []
    throw err
  }
}

const TRADING_ACTOR: Actor = { type: 'system', id: 'trading', label: 'trading demo' }

/**
 * Makes Deputy ready to decide the trading server's calls: declares its tools as Cedar actions
 * (with their arguments and the `limitCents` state), then stores each policy of
 * `policies/trading.cedar` Deputy has never had. A policy with any history (edited or removed by
 * an operator) is left alone: start-up never undoes an operator's change. The engine then
 * reloads, so the first call is decided with these policies.
 */
export async function installTradingPolicies(
  deps: Pick<DeputyDeps, 'policies' | 'policy'>,
  server: Pick<ProtectedMcpServer, 'actions'>,
  actor: Actor = TRADING_ACTOR,
): Promise<TradingPoliciesInstall> {
  const actions = server.actions()
  const [resource] = new Set(actions.map((action) => action.resource))
  if (resource === undefined) throw new Error('the trading server declares no actions')
  await deps.policies.declareActions(actions, actor)
  const validation = await deps.policies.validate(await tradingPolicies(resource))
  if (!validation.ok) {
    const [first] = validation.problems
    throw new Error(
      `policies/trading.cedar does not validate: ${first?.line}:${first?.column} ${first?.message}`,
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

/**
 * Gives a person a trading limit (in cents) at the server `scope.resource` unless they have one:
 * a limit set before, by anyone, is kept. Resolves to the limit in force and whether it was set now.
 */
export async function ensureTradingLimit(
  deps: Pick<DeputyDeps, 'store' | 'clock'>,
  scope: UserStateScope,
  limitCents: number,
): Promise<{ limitCents: number; set: boolean }> {
  if (!Number.isSafeInteger(limitCents) || limitCents < 0)
    throw new TypeError('a trading limit is a whole, non-negative number of cents')
  const state = createSqlUserStateStore({ store: deps.store, clock: deps.clock })
  let set = false
  const stored = await state.update(scope, LIMIT_KEY, (current) => {
    set = parseLimit(current) === undefined
    return set ? limitCents : current
  })
  return { limitCents: parseLimit(stored) ?? limitCents, set }
}
