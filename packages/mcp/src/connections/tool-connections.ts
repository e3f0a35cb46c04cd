import type { ConnectionExchange, ConnectionToken } from './exchange-client.js'

// `ctx.connections` inside a tool: the person's connected accounts at upstream providers, through
// Deputy's vault (issue 12 §6). The person's Deputy access token, verified by the kit, is the
// subject of the exchange and never reaches the tool; the upstream refresh token never leaves
// Deputy. Tokens are kept per person, provider and scope until shortly before they expire.

/** What a tool asks of a connection. */
export interface ConnectionTokenOptions {
  /** Scopes the tool needs (a space-separated string or a list); default the connection's. */
  readonly scope?: string | readonly string[]
}

/** The person's connected accounts, as a tool uses them. */
export interface ToolConnections {
  /**
   * A current access token of the person's account at `provider`. When the person has to connect
   * it first (or grant more scopes), throws {@link ConnectionRequiredError}; the kit answers the
   * call with the connect link (a URL-mode elicitation where the client supports it), and the
   * call, tried again after connecting, gets the token.
   */
  token(provider: string, options?: ConnectionTokenOptions): Promise<string>
}

/** The person must connect an account (or grant it more scopes) before the tool can go on. */
export class ConnectionRequiredError extends Error {
  readonly provider: string
  /** Deputy's connect link for this provider and these scopes. */
  readonly connectUri: string
  constructor(provider: string, connectUri: string) {
    super(`Connect your ${provider} account first: ${connectUri}`)
    this.name = 'ConnectionRequiredError'
    this.provider = provider
    this.connectUri = connectUri
  }
}

/** True for a {@link ConnectionRequiredError}, also one from another copy of this module. */
export function isConnectionRequired(error: unknown): error is ConnectionRequiredError {
  return (
    error instanceof Error &&
    error.name === 'ConnectionRequiredError' &&
    typeof (error as ConnectionRequiredError).connectUri === 'string'
  )
}

/** Refetched this long before Deputy said the token expires, so a tool never gets a stale one. */
const EXPIRY_MARGIN_MS = 30_000
/** A token Deputy gave no lifetime for is reused this long at most. */
const UNDATED_TTL_MS = 60_000

/** What `ctx.connections` is built from. */
export interface ConnectionsDeps {
  readonly exchange: ConnectionExchange
  /** At most this many tokens are kept (least recently stored go first). */
  readonly maxCached: number
  readonly now: () => number
}

/** The cache and single flight shared by every call of one protected server. */
export interface ConnectionsBroker {
  /** `ctx.connections` for one call: the person (`sub`) and the token the kit verified. */
  forCaller(sub: string, subjectToken: string): ToolConnections
}

function scopeList(scope: ConnectionTokenOptions['scope']): string[] {
  const list = typeof scope === 'string' ? scope.split(' ') : [...(scope ?? [])]
  return [...new Set(list.filter((s) => s.length > 0))].sort()
}

/** A broker: exchanges on demand, keeps the tokens in a bounded in-memory cache. */
export function connectionsBroker(deps: ConnectionsDeps): ConnectionsBroker {
  const cache = new Map<string, { token: ConnectionToken; reuseUntil: number }>()
  const inFlight = new Map<string, Promise<ConnectionToken>>()

  function remember(key: string, token: ConnectionToken): void {
    const reuseUntil =
      token.expiresAt === undefined
        ? deps.now() + UNDATED_TTL_MS
        : token.expiresAt - EXPIRY_MARGIN_MS
    if (reuseUntil <= deps.now()) return
    cache.delete(key)
    cache.set(key, { token, reuseUntil })
    while (cache.size > deps.maxCached) {
      const oldest = cache.keys().next().value
      if (oldest === undefined) break
      cache.delete(oldest)
    }
  }

  return {
    forCaller(sub, subjectToken) {
      return {
        async token(provider, options = {}) {
          if (typeof provider !== 'string' || provider.length === 0)
            throw new TypeError('connections.token: provider is required')
          const scopes = scopeList(options.scope)
          // JSON keeps the parts apart whatever characters they hold.
          const key = JSON.stringify([sub, provider, scopes])
          const kept = cache.get(key)
          if (kept !== undefined && kept.reuseUntil > deps.now()) return kept.token.accessToken
          if (kept !== undefined) cache.delete(key)
          let pending = inFlight.get(key)
          if (pending === undefined) {
            pending = deps
              .exchange({ subjectToken, provider, scopes })
              .then((outcome) => {
                if (outcome.status === 'connection_required')
                  throw new ConnectionRequiredError(provider, outcome.connectUri)
                remember(key, outcome.token)
                return outcome.token
              })
              .finally(() => inFlight.delete(key))
            inFlight.set(key, pending)
          }
          return (await pending).accessToken
        },
      }
    },
  }
}

/** `ctx.connections` of a server configured without the `connections` option. */
export const NO_CONNECTIONS: ToolConnections = {
  token: () =>
    Promise.reject(
      new TypeError('connections.token needs the connections option of protectMcpServer'),
    ),
}
