import type { Kysely } from 'kysely'
import type { Actor, AuditLog } from '../audit/types.js'
import { ClaimsSchema, isUniqueViolation, type User, type Users } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import { isDeputyError } from '../lib/errors.js'
import type { Database } from '../store/schema.js'
import type { Provider, UpstreamProfile } from './types.js'

/** What finding the person behind an upstream account reads and writes. */
export interface ProviderAccountDeps {
  db: Kysely<Database>
  clock: Clock
  audit: AuditLog
  users: Pick<Users, 'findById' | 'findByEmail' | 'create' | 'setClaims'>
}

/**
 * How the person was found: `matched` by the provider's subject (a sign-in before), `linked`
 * to an existing person by an email the provider verified, or `created` just in time.
 */
export type PersonFound = 'matched' | 'linked' | 'created'

/**
 * Why no person signs in. `unverified-email`: the provider does not vouch for the address, so it
 * may be anyone's; `no-email`: it gave none, and a new account needs one; `disabled`: the person
 * is; `not-created`: creating the account failed (a default role no longer exists …).
 */
export type PersonRefusal = 'unverified-email' | 'no-email' | 'disabled' | 'not-created'

export type PersonResolution =
  | { ok: true; user: User; found: PersonFound; claimsStored: boolean }
  | { ok: false; reason: PersonRefusal; user?: User; detail?: string }

/** Deputy acting on a provider's word, as the audit chain names it. */
function providerActor(provider: Provider): Actor {
  return { type: 'system', id: `provider:${provider.name}`, label: provider.displayName }
}

/**
 * The person an upstream account signs in as. First by the provider's stable subject
 * (`provider_identities`); else by email, but only one the provider marks verified: an address
 * an upstream account merely claims would let whoever registers it there take over the
 * Deputy account that has it (the "nOAuth" account takeover); else a new person, just in time,
 * with the provider's default roles. Nothing is created or linked for a refused account.
 */
export async function findPerson(
  deps: ProviderAccountDeps,
  provider: Provider,
  profile: UpstreamProfile,
  requestId: string | null,
): Promise<PersonResolution> {
  const known = await identityOf(deps, provider.name, profile.subject)
  let user: User | undefined
  let found: PersonFound = 'matched'
  if (known) {
    user = await deps.users.findById(known.user_id)
  }
  if (!user) {
    if (!profile.email) return { ok: false, reason: 'no-email' }
    if (!profile.emailVerified) return { ok: false, reason: 'unverified-email' }
    user = await deps.users.findByEmail(profile.email)
    found = 'linked'
    if (!user) {
      const created = await createPerson(deps, provider, profile)
      if (!created.ok) return created
      user = created.user
      found = created.found
    }
    if (user.status !== 'active') return { ok: false, reason: 'disabled', user }
    const linked = await link(deps, provider, profile, user, found, requestId)
    if (linked.user_id !== user.id) {
      // Another sign-in of the same upstream account linked it first: that link holds.
      user = await deps.users.findById(linked.user_id)
      if (!user) return { ok: false, reason: 'not-created' }
      found = 'matched'
    }
  }
  if (user.status !== 'active') return { ok: false, reason: 'disabled', user }
  const claimsStored = await refreshClaims(deps, provider, profile, user)
  return { ok: true, user: (await deps.users.findById(user.id)) ?? user, found, claimsStored }
}

function identityOf(deps: ProviderAccountDeps, provider: string, subject: string) {
  return deps.db
    .selectFrom('provider_identities')
    .select(['user_id', 'claims'])
    .where('provider', '=', provider)
    .where('subject', '=', subject)
    .executeTakeFirst()
}

/** A person created just in time; a race with a second sign-in of the same email links instead. */
async function createPerson(
  deps: ProviderAccountDeps,
  provider: Provider,
  profile: UpstreamProfile,
): Promise<
  | { ok: true; user: User; found: PersonFound }
  | { ok: false; reason: 'not-created'; detail: string }
> {
  const email = profile.email as string
  const name = (profile.name ?? profile.label ?? email.split('@')[0] ?? email).trim().slice(0, 200)
  try {
    const user = await deps.users.create(
      { email, name: name || email, roles: provider.defaultRoles, provider: provider.name },
      providerActor(provider),
    )
    return { ok: true, user, found: 'created' }
  } catch (err) {
    if (isDeputyError(err) && err.code === 'ERR_CONFLICT') {
      const user = await deps.users.findByEmail(email)
      if (user) return { ok: true, user, found: 'linked' }
    }
    if (isDeputyError(err) && err.code === 'ERR_INVALID_INPUT')
      return { ok: false, reason: 'not-created', detail: err.message }
    throw err
  }
}

/**
 * Records that the upstream account signs in as `user` (audited before the row that allows
 * it); returns the link that holds, which is another's when a concurrent sign-in won.
 */
async function link(
  deps: ProviderAccountDeps,
  provider: Provider,
  profile: UpstreamProfile,
  user: User,
  found: PersonFound,
  requestId: string | null,
): Promise<{ user_id: string }> {
  await deps.audit.append({
    type: 'provider_identity.linked',
    actor: providerActor(provider),
    target: { type: 'user', id: user.id },
    requestId,
    data: {
      provider: provider.name,
      subject: profile.subject,
      email: user.email,
      by: found === 'created' ? 'created' : 'verified-email',
    },
  })
  const now = deps.clock.now().getTime()
  try {
    await deps.db
      .insertInto('provider_identities')
      .values({
        provider: provider.name,
        subject: profile.subject,
        user_id: user.id,
        email: profile.email,
        claims: '{}',
        created_at: now,
        last_sign_in_at: null,
      })
      .execute()
    return { user_id: user.id }
  } catch (err) {
    if (!isUniqueViolation(err)) throw err
    const winner = await identityOf(deps, provider.name, profile.subject)
    if (!winner) throw err
    return winner
  }
}

/** Mapped claims with a name and value a person's custom claims accept (users.ts ClaimsSchema). */
function acceptableClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(claims)) {
    if (value === undefined) continue
    if (ClaimsSchema.safeParse({ [name]: value ?? 0 }).success) out[name] = value
  }
  return out
}

/**
 * Stores the claims the provider's mapping gave (GitHub's login as `github_login` …): on the
 * identity row as the provider said them at this sign-in, and merged into the person's custom
 * claims, which access-token claims templates, userinfo and policies read, so a resource can
 * list `github_login` like any other claim. A mapped claim the provider no longer gives (null)
 * is removed; the person's other claims are left alone. False when the merged claims were
 * refused (over 8 KiB): the sign-in goes on with the claims as they were.
 */
async function refreshClaims(
  deps: ProviderAccountDeps,
  provider: Provider,
  profile: UpstreamProfile,
  user: User,
): Promise<boolean> {
  const mapped = acceptableClaims(profile.claims)
  await deps.db
    .updateTable('provider_identities')
    .set({
      email: profile.email,
      claims: JSON.stringify(mapped),
      last_sign_in_at: deps.clock.now().getTime(),
    })
    .where('provider', '=', provider.name)
    .where('subject', '=', profile.subject)
    .execute()
  const merged: Record<string, unknown> = { ...user.claims }
  let changed = false
  for (const [name, value] of Object.entries(mapped)) {
    if (value === null) {
      if (name in merged) {
        delete merged[name]
        changed = true
      }
    } else if (JSON.stringify(merged[name]) !== JSON.stringify(value)) {
      merged[name] = value
      changed = true
    }
  }
  if (!changed) return true
  try {
    await deps.users.setClaims(user.email, merged, providerActor(provider))
    return true
  } catch (err) {
    if (isDeputyError(err) && err.code === 'ERR_INVALID_INPUT') return false
    throw err
  }
}
