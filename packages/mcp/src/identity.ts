/** The verified caller of a tool: who the person is, which agent acts for them, and what they may do. */
export interface Identity {
  /** `sub`: the person the agent acts for (or the agent itself for client-credentials tokens). */
  readonly sub: string
  /** The agent's OAuth `client_id` (RFC 9068 §2.2, or `azp` when only that is present). */
  readonly clientId: string | undefined
  /** Granted scopes, from the space-separated `scope` claim (RFC 9068 §2.2.3, RFC 7662 §2.2). */
  readonly scopes: readonly string[]
  /** Roles the authorization server put in the token for this resource. */
  readonly roles: readonly string[]
  /** Permissions the authorization server put in the token for this resource. */
  readonly permissions: readonly string[]
  /** Issuer of the token, when it names one. */
  readonly issuer: string | undefined
  /** Expiry, in seconds since the epoch. */
  readonly expiresAt: number | undefined
  /** `jti`, so audit records can point at the token without holding it. */
  readonly tokenId: string | undefined
  /** RFC 8693 §4.1 `act`: the chain of actors when the token came from a token exchange. */
  readonly actor: Readonly<Record<string, unknown>> | undefined
  /**
   * The actors of `act` as a list of their `sub`s (client ids at Deputy), the current actor
   * first: `['C', 'B']` for `act: {sub: 'C', act: {sub: 'B'}}`; empty when nobody exchanged it.
   */
  readonly actors: readonly string[]
  /** Every claim of the verified token (custom ones such as `favorite_song` included), never the token itself. */
  readonly claims: Readonly<Record<string, unknown>>
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((part) => part.length > 0)
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string')
  return []
}

/** How deep `act` is followed: a token is small, a loop in a claim is not. */
const MAX_ACTORS = 10

/** The `sub`s of an `act` chain, outermost (current actor) first, up to the first malformed one. */
function actorsOf(act: unknown): string[] {
  const actors: string[] = []
  let current = act
  while (current !== null && typeof current === 'object' && actors.length < MAX_ACTORS) {
    const sub = (current as Record<string, unknown>).sub
    if (typeof sub !== 'string') break
    actors.push(sub)
    current = (current as Record<string, unknown>).act
  }
  return actors
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined
}

/**
 * Builds an {@link Identity} from verified claims (a JWT payload or an introspection response);
 * undefined when there is no usable `sub`.
 */
export function identityFromClaims(claims: Record<string, unknown>): Identity | undefined {
  const sub = optionalString(claims.sub)
  if (sub === undefined) return undefined
  const act = claims.act
  return Object.freeze({
    sub,
    clientId: optionalString(claims.client_id) ?? optionalString(claims.azp),
    // `scp` is the array form some authorization servers use instead of RFC 9068's `scope`.
    scopes: Object.freeze(stringList(claims.scope ?? claims.scp)),
    roles: Object.freeze(stringList(claims.roles)),
    permissions: Object.freeze(stringList(claims.permissions)),
    issuer: optionalString(claims.iss),
    expiresAt: typeof claims.exp === 'number' ? claims.exp : undefined,
    tokenId: optionalString(claims.jti),
    actor:
      act !== null && typeof act === 'object' && !Array.isArray(act)
        ? (act as Record<string, unknown>)
        : undefined,
    actors: Object.freeze(actorsOf(act)),
    claims: Object.freeze({ ...claims }),
  })
}
