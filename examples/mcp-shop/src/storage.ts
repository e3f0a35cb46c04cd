import { randomUUID } from 'node:crypto'
import type { JsonValue, UserStateScope, UserStateStore } from '@deputy/server'
import type { Kysely } from 'kysely'

/** The caller's own durable state at the shop (already scoped to one person and the shop). */
export interface ShopState {
  read(key: string): Promise<JsonValue | undefined>
  /** Atomic read-modify-write; returning undefined deletes the key. */
  update(
    key: string,
    fn: (current: JsonValue | undefined) => JsonValue | undefined,
  ): Promise<JsonValue | undefined>
}

/** Binds a per-user state store to one person at one MCP server. */
export function userShopState(store: UserStateStore, scope: UserStateScope): ShopState {
  return {
    read: (key) => store.read(scope, key),
    update: (key, fn) => store.update(scope, key, fn),
  }
}

/** An order as the shop shows it; the field names are the seed demo's. */
export interface Order {
  id: string
  /** The person (`sub`) who ordered. */
  userId: string
  email: string | null
  company: string
  mailingAddress: string
  tshirtSize: string
  /** ISO 8601. */
  orderDate: string
  status: 'confirmed'
}

/** What the shop needs to place an order. */
export interface NewOrder {
  sub: string
  /** The agent that placed it. */
  clientId: string | null
  email: string | null
  company: string
  mailingAddress: string
  tshirtSize: string
}

/** Where orders are kept, for one shop (one MCP resource). */
export interface OrderBook {
  place(order: NewOrder): Promise<Order>
  /** The person's own orders, oldest first. */
  listFor(sub: string): Promise<Order[]>
}

/** The orders table of Deputy's migration 0003, as this example reads it. */
export interface ShopOrdersDatabase {
  mcp_shop_orders: {
    id: string
    resource: string
    sub: string
    client_id: string | null
    email: string | null
    company: string
    mailing_address: string
    tshirt_size: string
    status: string
    created_at: number
  }
}

/**
 * Orders in Deputy's database (SQLite or PostgreSQL), table `mcp_shop_orders`, so they outlive
 * the process and every replica sees the same ones. `resource` keeps two shops on one Deputy apart.
 */
export function createSqlOrderBook<DB extends ShopOrdersDatabase>(options: {
  /** Deputy's database (`deps.db`), or any database with the orders table. */
  db: Kysely<DB>
  resource: string
  now?: () => Date
  newId?: () => string
}): OrderBook {
  // Kysely's database type is invariant; this code touches only the orders table it declares.
  const db = options.db as unknown as Kysely<ShopOrdersDatabase>
  const { resource } = options
  const now = options.now ?? (() => new Date())
  const newId = options.newId ?? randomUUID
  return {
    async place(order) {
      const row = {
        id: newId(),
        resource,
        sub: order.sub,
        client_id: order.clientId,
        email: order.email,
        company: order.company,
        mailing_address: order.mailingAddress,
        tshirt_size: order.tshirtSize,
        status: 'confirmed',
        created_at: now().getTime(),
      }
      await db.insertInto('mcp_shop_orders').values(row).execute()
      return toOrder(row)
    },
    async listFor(sub) {
      const rows = await db
        .selectFrom('mcp_shop_orders')
        .selectAll()
        .where('resource', '=', resource)
        .where('sub', '=', sub)
        .orderBy('created_at')
        .orderBy('id')
        .execute()
      return rows.map(toOrder)
    },
  }
}

function toOrder(row: ShopOrdersDatabase['mcp_shop_orders']): Order {
  return {
    id: row.id,
    userId: row.sub,
    email: row.email,
    company: row.company,
    mailingAddress: row.mailing_address,
    tshirtSize: row.tshirt_size,
    orderDate: new Date(row.created_at).toISOString(),
    status: 'confirmed',
  }
}
