import type { Kysely } from 'kysely'
import type { Sealer } from '../keys/types.js'
import type { Clock } from '../lib/clock.js'
import { randomToken, sha256 } from '../lib/random.js'
import type { Database } from '../store/schema.js'

/**
 * A redirect to a provider lives ten minutes: long enough for a person to sign in upstream
 * (and type a second factor there), short enough that a `state` left in a browser's history
 * is soon worth nothing.
 */
export const PROVIDER_FLOW_TTL_MS = 10 * 60_000

/** States longer than this are not ours (ours are 43 characters): refused before hashing. */
const MAX_STATE_LENGTH = 256

/** What the redirect is for: signing a person in (identity/), or connecting an account (vault/). */
export type ProviderFlowKind = 'sign-in' | 'connect'

/** What a flow remembers besides its secrets. */
export interface ProviderFlowInput {
  /** Connect: the signed-in person connecting. Sign-in: absent. */
  userId?: string | null
  /** Connect links handed out by an agent or MCP server: the client whose URIs `returnTo` matched. */
  clientId?: string | null
  /** Scopes asked of the provider. */
  scopes: string[]
  /** Where the browser goes when the flow is done (already checked by the caller). */
  returnTo?: string | null
}

/** What the caller sends to the provider (`state`, the PKCE verifier's challenge, `nonce`). */
export interface BegunProviderFlow {
  state: string
  codeVerifier: string
  nonce: string
  /** Epoch ms. */
  expiresAt: number
}

/** A flow taken back at the callback, secrets opened. */
export interface ProviderFlow {
  kind: ProviderFlowKind
  provider: string
  userId: string | null
  clientId: string | null
  scopes: string[]
  returnTo: string | null
  codeVerifier: string
  nonce: string
  /** Epoch ms. */
  createdAt: number
}

/**
 * `unknown`: no such flow (never begun, already taken — a replay — or begun for another kind
 * or provider); `expired`: it was there but too old, and is gone now too.
 */
export type TakeProviderFlowResult =
  | { status: 'ok'; flow: ProviderFlow }
  | { status: 'unknown' }
  | { status: 'expired' }

/** What the flows need: the database, the time, and the sealer for the PKCE verifier and nonce. */
export interface ProviderFlowDeps {
  db: Kysely<Database>
  clock: Clock
  sealer: Sealer
}

/** The associated data that binds a flow's sealed secrets to its row (store/schema.ts). */
function secretsAssociatedData(stateHash: string): string {
  return `provider_flows:${stateHash}`
}

/**
 * Redirects to a provider in progress, shared by sign-in (identity/provider-sign-in.ts) and the
 * vault's connect flow. The `state` is only in the browser and the provider's redirect: the row
 * is found by its SHA-256, so a database reader cannot complete someone's flow, and the PKCE
 * verifier and nonce are sealed, so they cannot either with the state alone from a log.
 */
export function createProviderFlows(deps: ProviderFlowDeps) {
  const { db } = deps

  return {
    /** Starts a flow: a fresh `state`, PKCE `code_verifier` (RFC 7636 §4.1) and `nonce`, stored. */
    async begin(
      kind: ProviderFlowKind,
      provider: string,
      input: ProviderFlowInput,
    ): Promise<BegunProviderFlow> {
      // 256 bits each; base64url of 32 bytes is 43 characters, within RFC 7636's 43–128.
      const state = randomToken(32)
      const codeVerifier = randomToken(32)
      const nonce = randomToken(32)
      const stateHash = sha256(state)
      const now = deps.clock.now().getTime()
      const expiresAt = now + PROVIDER_FLOW_TTL_MS
      await db
        .insertInto('provider_flows')
        .values({
          state_hash: stateHash,
          kind,
          provider,
          secrets_sealed: deps.sealer.seal(
            JSON.stringify({ codeVerifier, nonce }),
            secretsAssociatedData(stateHash),
          ),
          user_id: input.userId ?? null,
          client_id: input.clientId ?? null,
          scopes: JSON.stringify(input.scopes),
          return_to: input.returnTo ?? null,
          created_at: now,
          expires_at: expiresAt,
        })
        .execute()
      return { state, codeVerifier, nonce, expiresAt }
    },

    /**
     * Takes a flow back exactly once: one DELETE … RETURNING, so of any number of callbacks with
     * the same `state` (a replay, a double click, two replicas) one gets the flow and the rest
     * `unknown`. With `expect`, a state begun for another kind or provider is not taken (and
     * answers `unknown`), so a connect flow's state cannot finish a sign-in or the reverse.
     */
    async take(
      state: string,
      expect: { kind?: ProviderFlowKind; provider?: string } = {},
    ): Promise<TakeProviderFlowResult> {
      if (state.length === 0 || state.length > MAX_STATE_LENGTH) return { status: 'unknown' }
      const stateHash = sha256(state)
      let query = db.deleteFrom('provider_flows').where('state_hash', '=', stateHash)
      if (expect.kind) query = query.where('kind', '=', expect.kind)
      if (expect.provider) query = query.where('provider', '=', expect.provider)
      const row = await query.returningAll().executeTakeFirst()
      if (!row) return { status: 'unknown' }
      if (Number(row.expires_at) <= deps.clock.now().getTime()) return { status: 'expired' }
      const secrets = JSON.parse(
        deps.sealer.open(row.secrets_sealed, secretsAssociatedData(stateHash)),
      ) as { codeVerifier: string; nonce: string }
      return {
        status: 'ok',
        flow: {
          kind: row.kind,
          provider: row.provider,
          userId: row.user_id,
          clientId: row.client_id,
          scopes: JSON.parse(row.scopes) as string[],
          returnTo: row.return_to,
          codeVerifier: secrets.codeVerifier,
          nonce: secrets.nonce,
          createdAt: Number(row.created_at),
        },
      }
    },
  }
}

export type ProviderFlows = ReturnType<typeof createProviderFlows>
