import { decodeProtectedHeader, importJWK, type JWK, jwtVerify, SignJWT } from 'jose'
import type { Clock } from '../lib/clock.js'
import type { Store } from '../store/db.js'
import type { AuditVerification } from './verify.js'

// Signed checkpoints of the chain's head. The hash chain shows that no record was edited,
// inserted, reordered or removed from its middle, but not that records were cut off its end:
// the shortened chain is a valid chain. A checkpoint says "record `seq` existed with hash `hash`",
// signed with one of Deputy's signing keys; verifying the chain against the newest checkpoint
// (and any the operator kept elsewhere) finds a truncated tail. The newest suffices: a chain that
// holds record `seq` with that hash holds every earlier checkpoint's record too.

/** The JWS `typ` of a checkpoint (explicit typing, RFC 8725 §3.11: never mistaken for a token). */
export const CHECKPOINT_TYP = 'deputy-audit-checkpoint+jwt'

/** A key that can sign now (keys/types.ts ActiveSigningKey; structural, audit/ imports no keys/). */
export interface CheckpointSigningKey {
  kid: string
  alg: string
  privateKey: CryptoKey
}

export interface CheckpointDeps {
  store: Store
  clock: Clock
  issuer: string
  signingKeys: { active(): Promise<CheckpointSigningKey> }
}

/** A checkpoint: the record it vouches for, when it was made, and its signed form. */
export interface AuditCheckpoint {
  seq: number
  hash: string
  time: string
  jws: string
}

/**
 * Signs and stores a checkpoint of the chain's head now; null for an empty chain. A head that
 * already has a checkpoint gets no second one (replicas checkpointing together write one row).
 */
export async function writeCheckpoint(deps: CheckpointDeps): Promise<AuditCheckpoint | null> {
  const head = await deps.store.db
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (!head) return null
  const seq = Number(head.seq)
  const existing = await deps.store.db
    .selectFrom('audit_checkpoints')
    .selectAll()
    .where('seq', '=', seq)
    .executeTakeFirst()
  if (existing) return toCheckpoint(existing)
  const key = await deps.signingKeys.active()
  // Whole seconds, as in the JWS's `iat`, so the stored and the kept form name the same time.
  const iat = Math.floor(deps.clock.now().getTime() / 1000)
  const jws = await new SignJWT({ seq, hash: head.hash })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: CHECKPOINT_TYP })
    .setIssuer(deps.issuer)
    .setIssuedAt(iat)
    .sign(key.privateKey)
  const row = { seq, hash: head.hash, jws, created_at: iat * 1000 }
  await deps.store.db
    .insertInto('audit_checkpoints')
    .values(row)
    .onConflict((oc) => oc.column('seq').doNothing())
    .execute()
  return toCheckpoint(row)
}

function toCheckpoint(row: { seq: number; hash: string; jws: string; created_at: number }) {
  return {
    seq: Number(row.seq),
    hash: row.hash,
    time: new Date(Number(row.created_at)).toISOString(),
    jws: row.jws,
  }
}

/** What the checkpoints say about a verified chain. */
export interface CheckpointReport {
  /** The newest checkpoint found (stored or given), if any. */
  latest?: { seq: number; hash: string; time: string; source: 'stored' | 'given' }
  /** Set when the chain does not hold what a checkpoint vouches for, or a checkpoint is bad. */
  problem?: string
}

/**
 * Checks the chain against the newest stored checkpoint and against `given` ones (compact JWS
 * kept elsewhere: a log, a ticket, another system). Each must carry a valid signature of one of
 * Deputy's signing keys (retired keys included: their public halves stay in the database), and
 * the chain must hold its record with its hash.
 */
export async function checkCheckpoints(
  store: Store,
  chain: AuditVerification,
  given: readonly string[] = [],
): Promise<CheckpointReport> {
  const stored = await store.db
    .selectFrom('audit_checkpoints')
    .select('jws')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst()
  const candidates = [
    ...(stored ? [{ jws: stored.jws, source: 'stored' as const }] : []),
    ...given.map((jws) => ({ jws: jws.trim(), source: 'given' as const })),
  ]
  let latest: CheckpointReport['latest']
  for (const { jws, source } of candidates) {
    const opened = await openCheckpoint(store, jws)
    if ('problem' in opened)
      return {
        ...(latest && { latest }),
        problem: `${source === 'stored' ? 'the stored' : 'a given'} checkpoint ${opened.problem}`,
      }
    const checkpoint = { ...opened, source }
    if (!latest || checkpoint.seq > latest.seq) latest = checkpoint
    const problem = await chainProblem(store, chain, checkpoint)
    if (problem) return { latest: checkpoint, problem }
  }
  return latest ? { latest } : {}
}

async function openCheckpoint(
  store: Store,
  jws: string,
): Promise<{ seq: number; hash: string; time: string } | { problem: string }> {
  let kid: string | undefined
  try {
    kid = decodeProtectedHeader(jws).kid
  } catch {
    return { problem: 'is not a compact JWS' }
  }
  const key = kid
    ? await store.db
        .selectFrom('signing_keys')
        .select('public_jwk')
        .where('kid', '=', kid)
        .executeTakeFirst()
    : undefined
  if (!key) return { problem: `is signed with key ${kid ?? '(none)'}, which Deputy never had` }
  try {
    const jwk = JSON.parse(key.public_jwk) as JWK
    const { payload } = await jwtVerify(jws, await importJWK(jwk, jwk.alg), {
      typ: CHECKPOINT_TYP,
      algorithms: ['ES256', 'EdDSA'],
      requiredClaims: ['seq', 'hash', 'iat'],
    })
    const { seq, hash, iat } = payload as { seq: unknown; hash: unknown; iat: number }
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
      return { problem: 'has no valid seq' }
    }
    if (typeof hash !== 'string') return { problem: 'has no hash' }
    return { seq, hash, time: new Date(iat * 1000).toISOString() }
  } catch {
    return { problem: 'has a signature that does not verify (forged or altered?)' }
  }
}

async function chainProblem(
  store: Store,
  chain: AuditVerification,
  checkpoint: { seq: number; hash: string; time: string },
): Promise<string | undefined> {
  const last = chain.ok ? chain.records : (chain.firstBad?.seq ?? 1) - 1
  if (chain.ok && last < checkpoint.seq) {
    const cut =
      last + 1 === checkpoint.seq
        ? `record ${checkpoint.seq} was`
        : `records ${last + 1} to ${checkpoint.seq} were`
    return `${cut} cut off the end of the chain: it ends at record ${last}, but the checkpoint of ${checkpoint.time} saw record ${checkpoint.seq}`
  }
  if (checkpoint.seq > last) return undefined
  const row = await store.db
    .selectFrom('audit_events')
    .select('hash')
    .where('seq', '=', checkpoint.seq)
    .executeTakeFirst()
  if (row?.hash !== checkpoint.hash) {
    return `record ${checkpoint.seq} is not the one the checkpoint of ${checkpoint.time} saw (the chain was rewritten from there?)`
  }
  return undefined
}
