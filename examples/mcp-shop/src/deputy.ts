import { type AuditHook, type FetchLike, jwtVerifier, type ProtectedMcpServer } from '@deputy/mcp'
import { createSqlUserStateStore, type DeputyDeps } from '@deputy/server'
import { createShopMcpServer } from './mcp.js'
import { createSqlOrderBook } from './storage.js'

/** Options of {@link createDeputyShop}. */
export interface DeputyShopOptions {
  /** The Deputy the shop lives in: its database holds the orders and the per-person state. */
  deps: Pick<DeputyDeps, 'store' | 'db' | 'clock' | 'logger'>
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
 * against Deputy's JWKS with `aud` = the shop, per-person state in Deputy's SQL store (so a ban
 * survives restarts and new client connections), orders in Deputy's database.
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
    ...(options.audit !== undefined && { audit: options.audit }),
    onError: (error) => deps.logger.error({ err: error }, 'mcp.shop'),
  })
}
