import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server'
import type { RefusalLog } from '../audit/refusals.js'
import type { Actor, AuditEventInput, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import { randomToken, safeEqual, sha256 } from '../lib/random.js'
import { endReplacedSession } from './login.js'
import {
  type CurrentSession,
  type SessionDeps,
  type StartedSession,
  startSession,
} from './sessions.js'
import type { User } from './users.js'

/**
 * @simplewebauthn/server, loaded on the first passkey step: it and its CBOR and ASN.1 parsers
 * take about as long to load as the rest of a `deputy` command, which never needs them.
 */
let webauthn: Promise<typeof import('@simplewebauthn/server')> | undefined
function simpleWebAuthn(): Promise<typeof import('@simplewebauthn/server')> {
  webauthn ??= import('@simplewebauthn/server')
  return webauthn
}

// Passkeys (WebAuthn Level 3, issue 15 §3) through @simplewebauthn/server: register one while
// signed in, sign in with one (a discoverable credential: no email typed), and count a sign-in
// with one as a fresh confirmation for a high-risk approval. User verification (a PIN, a
// fingerprint) is required every time, so a passkey is never a single factor someone holding the
// device alone can use.

/** How long a challenge may be answered: a person finding their authenticator, not a minute more. */
export const PASSKEY_CHALLENGE_SECONDS = 120

/** Most passkeys one person may register (each is a row; a stolen session cannot add thousands). */
export const MAX_PASSKEYS_PER_PERSON = 20

/** The cookie holding a sign-in's challenge; `__Host-` as the session cookie (sessions.ts). */
export const PASSKEY_CHALLENGE_COOKIE = '__Host-deputy-passkey'

/** The purpose of the MAC on the sign-in challenge cookie (keys/digest.ts). */
export const PASSKEY_CHALLENGE_DIGEST = 'passkey sign-in challenge'

/** The relying party: the issuer's host is the RP ID, its origin the only origin accepted. */
export interface RelyingParty {
  rpID: string
  origin: string
  rpName: string
}

/** The relying party of an issuer URL (`https://id.example.com/` → rpID `id.example.com`). */
export function relyingParty(issuer: string): RelyingParty {
  const url = new URL(issuer)
  return { rpID: url.hostname, origin: url.origin, rpName: 'Deputy' }
}

/** A passkey as the security page lists it. */
export interface Passkey {
  credentialId: string
  name: string
  createdAt: number
  lastUsedAt: number | null
}

/** What passkeys read and write. */
export interface PasskeyDeps extends SessionDeps {
  config: Pick<ResolvedConfig, 'issuer' | 'sessionTtlSeconds'>
  audit: AuditLog
  refusals: Pick<RefusalLog, 'record'>
  /** A keyed MAC (keys/digest.ts) for PASSKEY_CHALLENGE_DIGEST: signs the sign-in challenge cookie. */
  challengeMac(value: string): string
}

/** Why a passkey step was refused. Sign-in reasons go to the audit chain (summarised). */
export type PasskeyFailure =
  | 'no-challenge'
  | 'expired-challenge'
  | 'replayed-challenge'
  | 'unknown-credential'
  | 'wrong-user-handle'
  | 'disabled'
  | 'assertion-failed'
  | 'attestation-failed'
  | 'already-registered'
  | 'too-many'

/** A refused passkey step, with one line for the person. */
export class PasskeyError extends Error {
  readonly reason: PasskeyFailure
  constructor(reason: PasskeyFailure, message: string) {
    super(message)
    this.name = 'PasskeyError'
    this.reason = reason
  }
}

const actorOf = (user: Pick<User, 'id' | 'email'>): Actor => ({
  type: 'user',
  id: user.id,
  label: user.email,
})

/** The challenge a response answers, read from its clientDataJSON (verified again by the library). */
function challengeOf(clientDataJSON: string): string | undefined {
  try {
    const data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as unknown
    const challenge = (data as { challenge?: unknown } | null)?.challenge
    return typeof challenge === 'string' && challenge.length <= 512 ? challenge : undefined
  } catch {
    return undefined
  }
}

/** Passkeys: the person's list, registration, removal and sign-in. */
export function createPasskeys(deps: PasskeyDeps) {
  const { db, clock, audit } = deps
  const rp = relyingParty(deps.config.issuer)

  const rows = (userId: string) =>
    db
      .selectFrom('passkeys')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'asc')
      .execute()

  return {
    relyingParty: rp,

    /** A person's passkeys, oldest first. */
    async list(userId: string): Promise<Passkey[]> {
      return (await rows(userId)).map((r) => ({
        credentialId: r.credential_id,
        name: r.name,
        createdAt: Number(r.created_at),
        lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
      }))
    },

    /**
     * Options for `navigator.credentials.create()`: a discoverable credential with user
     * verification, none of the person's existing ones again. The challenge is stored by digest,
     * bound to this session; a new one replaces the session's previous one.
     */
    async registrationOptions(
      session: CurrentSession,
    ): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const existing = await rows(session.user.id)
      if (existing.length >= MAX_PASSKEYS_PER_PERSON)
        throw new PasskeyError(
          'too-many',
          `You have ${MAX_PASSKEYS_PER_PERSON} passkeys, the most Deputy keeps; remove one first.`,
        )
      const options = await (await simpleWebAuthn()).generateRegistrationOptions({
        rpName: rp.rpName,
        rpID: rp.rpID,
        userName: session.user.email,
        userDisplayName: session.user.name,
        userID: new TextEncoder().encode(session.user.id),
        challenge: Buffer.from(randomToken(32), 'base64url'),
        timeout: PASSKEY_CHALLENGE_SECONDS * 1000,
        attestationType: 'none',
        excludeCredentials: existing.map((r) => ({
          id: r.credential_id,
          transports: JSON.parse(r.transports) as AuthenticatorTransport[],
        })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      })
      const expiresAt = clock.now().getTime() + PASSKEY_CHALLENGE_SECONDS * 1000
      await db.transaction().execute(async (trx) => {
        await trx
          .deleteFrom('passkey_challenges')
          .where('session_hash', '=', session.idHash)
          .execute()
        await trx
          .insertInto('passkey_challenges')
          .values({
            challenge_hash: sha256(options.challenge),
            purpose: 'register',
            session_hash: session.idHash,
            expires_at: expiresAt,
          })
          .execute()
      })
      return options
    },

    /**
     * Verifies a registration response against the challenge this session was given (consumed
     * whatever the outcome) and stores the passkey under `name`.
     */
    async register(
      session: CurrentSession,
      input: { name: string; response: RegistrationResponseJSON; requestId: string | null },
    ): Promise<Passkey> {
      const challenge = challengeOf(input.response.response.clientDataJSON)
      const consumed = challenge
        ? await db
            .deleteFrom('passkey_challenges')
            .where('challenge_hash', '=', sha256(challenge))
            .where('purpose', '=', 'register')
            .where('session_hash', '=', session.idHash)
            .returning('expires_at')
            .executeTakeFirst()
        : undefined
      if (!challenge || !consumed)
        throw new PasskeyError('no-challenge', 'This passkey request has expired. Try again.')
      if (Number(consumed.expires_at) <= clock.now().getTime())
        throw new PasskeyError('expired-challenge', 'This passkey request has expired. Try again.')
      let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>
      try {
        verified = await (await simpleWebAuthn()).verifyRegistrationResponse({
          response: input.response,
          expectedChallenge: challenge,
          expectedOrigin: rp.origin,
          expectedRPID: rp.rpID,
          requireUserVerification: true,
        })
      } catch {
        verified = { verified: false }
      }
      if (!verified.verified)
        throw new PasskeyError(
          'attestation-failed',
          'Your browser’s answer could not be verified. Try again.',
        )
      const { credential } = verified.registrationInfo
      const taken = await db
        .selectFrom('passkeys')
        .select('user_id')
        .where('credential_id', '=', credential.id)
        .executeTakeFirst()
      if (taken) throw new PasskeyError('already-registered', 'This passkey is already registered.')
      const now = clock.now().getTime()
      const passkey: Passkey = {
        credentialId: credential.id,
        name: input.name,
        createdAt: now,
        lastUsedAt: null,
      }
      // Recorded before it can be used to sign in.
      await audit.append({
        type: 'passkey.registered',
        actor: actorOf(session.user),
        target: { type: 'user', id: session.user.id },
        requestId: input.requestId,
        data: { credential: credential.id.slice(0, 16), name: input.name },
      })
      await db
        .insertInto('passkeys')
        .values({
          credential_id: credential.id,
          user_id: session.user.id,
          public_key: Buffer.from(credential.publicKey).toString('base64url'),
          counter: credential.counter,
          transports: JSON.stringify(credential.transports ?? []),
          name: input.name,
          created_at: now,
          last_used_at: null,
        })
        .execute()
      return passkey
    },

    /** Removes one of the person's passkeys; false when they have none with that id. */
    async remove(
      user: Pick<User, 'id' | 'email'>,
      credentialId: string,
      requestId: string | null,
    ): Promise<boolean> {
      const row = await db
        .selectFrom('passkeys')
        .select(['credential_id', 'name'])
        .where('credential_id', '=', credentialId)
        .where('user_id', '=', user.id)
        .executeTakeFirst()
      if (!row) return false
      await audit.append({
        type: 'passkey.removed',
        actor: actorOf(user),
        target: { type: 'user', id: user.id },
        requestId,
        data: { credential: row.credential_id.slice(0, 16), name: row.name },
      })
      await db
        .deleteFrom('passkeys')
        .where('credential_id', '=', credentialId)
        .where('user_id', '=', user.id)
        .execute()
      return true
    },

    /**
     * Options for `navigator.credentials.get()` with no credentials listed (the authenticator
     * offers the person's discoverable ones), and the cookie that carries its challenge: the
     * challenge, its expiry and a MAC over both. Nothing is written, so anyone may ask as often
     * as they like without growing any table.
     */
    async signInOptions(): Promise<{
      options: PublicKeyCredentialRequestOptionsJSON
      cookie: string
    }> {
      const options = await (await simpleWebAuthn()).generateAuthenticationOptions({
        rpID: rp.rpID,
        challenge: Buffer.from(randomToken(32), 'base64url'),
        timeout: PASSKEY_CHALLENGE_SECONDS * 1000,
        userVerification: 'required',
      })
      const signed = `${options.challenge}.${clock.now().getTime() + PASSKEY_CHALLENGE_SECONDS * 1000}`
      return { options, cookie: `${signed}.${deps.challengeMac(signed)}` }
    },

    /**
     * Signs in with a passkey: the assertion must answer the challenge in this browser's cookie,
     * come from a registered credential of an active person, carry user verification and a
     * counter that did not go back (the library's check); the challenge is then marked used, so
     * the same answer is never accepted twice. Every refusal is recorded through the refusal log
     * (anyone can send one). The session the browser came with ends; a new `passkey` one starts.
     */
    async signIn(attempt: {
      response: AuthenticationResponseJSON
      cookie: string | undefined
      address: string | undefined
      previousSessionId: string | undefined
      requestId: string | null
      /** The browser's User-Agent header, summarised on the session (identity/device.ts). */
      userAgent?: string
    }): Promise<{ user: User; session: StartedSession }> {
      const where = { method: 'passkey', address: attempt.address ?? 'unknown' }
      const refuse = async (
        reason: PasskeyFailure,
        user: Pick<User, 'id' | 'email'> | undefined,
        data: Record<string, unknown> = {},
      ): Promise<never> => {
        const event: AuditEventInput = {
          type: 'login.failed',
          actor: user ? actorOf(user) : { type: 'user', id: 'unknown' },
          reason,
          requestId: attempt.requestId,
          data: { ...where, ...data },
        }
        await deps.refusals.record(event)
        throw new PasskeyError(reason, 'That passkey did not sign you in. Try again.')
      }

      const now = clock.now().getTime()
      const [challenge, until, mac] = (attempt.cookie ?? '').split('.')
      if (
        !challenge ||
        !until ||
        !mac ||
        !safeEqual(mac, deps.challengeMac(`${challenge}.${until}`))
      )
        return refuse('no-challenge', undefined)
      const expiresAt = Number(until)
      if (!(expiresAt > now)) return refuse('expired-challenge', undefined)

      const credentialId = attempt.response.id
      const row = await db
        .selectFrom('passkeys')
        .selectAll()
        .where('credential_id', '=', credentialId)
        .executeTakeFirst()
      if (!row) return refuse('unknown-credential', undefined)
      const user = await deps.users.findById(row.user_id)
      if (!user) return refuse('unknown-credential', undefined)
      const credential = { credential: credentialId.slice(0, 16) }
      // A discoverable credential names its person; it must be the one the credential belongs to.
      const handle = attempt.response.response.userHandle
      if (handle !== undefined && handle !== Buffer.from(user.id, 'utf8').toString('base64url'))
        return refuse('wrong-user-handle', user, credential)
      if (user.status !== 'active') return refuse('disabled', user, credential)

      // A used challenge is refused as such before anything else is checked (the counter would
      // refuse most replays too, but many authenticators keep no counter).
      const used = await db
        .selectFrom('passkey_challenges')
        .select('challenge_hash')
        .where('challenge_hash', '=', sha256(challenge))
        .executeTakeFirst()
      if (used) return refuse('replayed-challenge', user, credential)

      let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>> | undefined
      let problem = 'not verified'
      try {
        verified = await (await simpleWebAuthn()).verifyAuthenticationResponse({
          response: attempt.response,
          expectedChallenge: challenge,
          expectedOrigin: rp.origin,
          expectedRPID: rp.rpID,
          credential: {
            id: row.credential_id,
            publicKey: Buffer.from(row.public_key, 'base64url'),
            counter: Number(row.counter),
            transports: JSON.parse(row.transports) as AuthenticatorTransport[],
          },
          requireUserVerification: true,
        })
      } catch (err) {
        // The library's own words (a counter that went back, a wrong origin, no user verification).
        problem = (err as Error).message.slice(0, 200)
      }
      if (!verified?.verified || !verified.authenticationInfo.userVerified)
        return refuse('assertion-failed', user, { ...credential, problem })

      // Single use: the first verified answer to a challenge marks it; a second finds it marked.
      const marked = await db
        .insertInto('passkey_challenges')
        .values({
          challenge_hash: sha256(challenge),
          purpose: 'sign-in',
          session_hash: null,
          expires_at: expiresAt,
        })
        .onConflict((oc) => oc.column('challenge_hash').doNothing())
        .returning('challenge_hash')
        .executeTakeFirst()
      if (!marked) return refuse('replayed-challenge', user, credential)

      await db
        .updateTable('passkeys')
        .set({ counter: verified.authenticationInfo.newCounter, last_used_at: now })
        .where('credential_id', '=', row.credential_id)
        .execute()
      await endReplacedSession(deps, attempt.previousSessionId, attempt.requestId)
      const session = await startSession(deps, user.id, 'passkey', attempt.userAgent)
      await audit.append({
        type: 'login.succeeded',
        actor: actorOf(user),
        target: { type: 'user', id: user.id },
        requestId: attempt.requestId,
        data: {
          ...where,
          email: user.email,
          ...credential,
          session: session.idHash.slice(0, 16),
        },
      })
      return { user, session }
    },
  }
}

/** Passkeys, as the routes and the composition root hold them. */
export type Passkeys = ReturnType<typeof createPasskeys>
