import { rmSync, writeFileSync } from 'node:fs'
import type { Actor, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import { DeputyError } from '../lib/errors.js'
import {
  encodeMasterKey,
  generateMasterKey,
  parseMasterKey,
  readMasterKeyFile,
  replaceKeyFile,
} from './master-key.js'
import {
  type ResealCounts,
  type ResealDeps,
  type ResealFailure,
  type ResealOptions,
  resealOnce,
} from './reseal.js'

/** Deps of a master-key rotation. */
export interface RotateMasterKeyDeps extends ResealDeps {
  config: Pick<ResolvedConfig, 'masterKey' | 'masterKeyPrevious' | 'masterKeyFile'>
  audit: AuditLog
}

export interface RotateMasterKeyOptions {
  /** The new key in its text form; default a freshly generated one. Key files only. */
  newKey?: string
  /** Retire the previous keys even when some records did not open (they never will). */
  retireDespiteFailures?: boolean
  actor?: Actor
  /** Rows per query (default 100). */
  batchSize?: number
  /** After each batch (tests act mid-rotation here; an error interrupts the rotation). */
  onBatch?: (counts: ResealCounts) => Promise<void> | void
  /** Just before each record's write (tests put a concurrent writer here). */
  beforeWrite?: ResealOptions['beforeWrite']
}

/** What a rotation did: counts only, never key material (key ids are digests). */
export interface MasterKeyRotation {
  /** Id of the key that seals every record now. */
  masterKeyId: string
  /** Ids of the previous keys. */
  previousKeyIds: string[]
  /** True when an interrupted rotation was finished rather than a new one begun. */
  resumed: boolean
  resealed: number
  alreadyCurrent: number
  byColumn: Record<string, number>
  /** Records that did not open with any known key (altered, or sealed with an unknown key). */
  failed: ResealFailure[]
  /**
   * Whether the previous keys are gone: `file` — removed from the key file; `environment` —
   * only the operator can remove them (`operatorAction` says how); `kept` — some records did not
   * open, so the previous keys stay until those are repaired, deleted or retired anyway.
   */
  retired: 'file' | 'environment' | 'kept' | 'nothing-to-retire'
  operatorAction?: string
}

// A converging re-seal needs two passes (one that works, one that finds nothing left); more only
// when writers keep racing it. The bound keeps a pathological writer from holding the CLI forever.
const MAX_PASSES = 10

/**
 * `deputy keys rotate-master`. With a key file: puts the new key first in the file (the old one
 * stays, second, so every process still opens what it sealed), re-seals every registered record
 * with the new key, then removes the old key from the file. Serving processes follow the file
 * (keys/key-ring.ts), so from the moment the file changes they seal with the new key and open
 * both. A file that already holds previous keys is an interrupted rotation: it is finished, not
 * begun again. With keys from the environment, the operator has already made the new key
 * current everywhere (DEPUTY_MASTER_KEY, the old one in DEPUTY_MASTER_KEY_PREVIOUS); this re-seals
 * and says what to remove. docs/security.md has the whole story.
 */
export async function rotateMasterKey(
  deps: RotateMasterKeyDeps,
  options: RotateMasterKeyOptions = {},
): Promise<MasterKeyRotation> {
  const fromEnvironment = deps.config.masterKey !== undefined
  if (fromEnvironment && options.newKey !== undefined) {
    throw new DeputyError(
      'ERR_CONFLICT',
      'the master key comes from DEPUTY_MASTER_KEY, which Deputy cannot change: make the new key current on every process with the old one in DEPUTY_MASTER_KEY_PREVIOUS (two rolling deployments, docs/security.md), then run `deputy keys rotate-master` without --new-key-file',
    )
  }
  const begun = fromEnvironment ? undefined : beginInFile(deps.config.masterKeyFile, options)
  const current = deps.masterKeys.current()
  if (begun && current.kid !== begun.kid) {
    throw new DeputyError(
      'ERR_MASTER_KEY_INVALID',
      `master key file ${deps.config.masterKeyFile} names key ${begun.kid}, but this process seals with ${current.kid}`,
    )
  }

  const totals = { resealed: 0, alreadyCurrent: 0, byColumn: {} as Record<string, number> }
  let failed: ResealFailure[] = []
  for (let pass = 1; ; pass++) {
    const counts = await resealOnce(deps, {
      ...(options.batchSize !== undefined && { batchSize: options.batchSize }),
      ...(options.onBatch && { onBatch: options.onBatch }),
      ...(options.beforeWrite && { beforeWrite: options.beforeWrite }),
    })
    totals.resealed += counts.resealed
    if (pass === 1) totals.alreadyCurrent = counts.alreadyCurrent
    for (const [column, n] of Object.entries(counts.byColumn))
      totals.byColumn[column] = (totals.byColumn[column] ?? 0) + n
    failed = counts.failed
    if (counts.resealed === 0 && counts.raced === 0) break
    if (pass === MAX_PASSES) {
      throw new DeputyError(
        'ERR_CONFLICT',
        'records kept changing under the re-seal; run `deputy keys rotate-master` again to finish',
      )
    }
  }

  const previousKeyIds = fromEnvironment
    ? previousFromEnvironment(deps.config.masterKeyPrevious, current.kid)
    : (begun?.previous ?? [])
  const keep = failed.length > 0 && options.retireDespiteFailures !== true
  const retired: MasterKeyRotation['retired'] =
    previousKeyIds.length === 0
      ? 'nothing-to-retire'
      : keep
        ? 'kept'
        : fromEnvironment
          ? 'environment'
          : 'file'
  const rotation: MasterKeyRotation = {
    masterKeyId: current.kid,
    previousKeyIds,
    resumed: begun?.resumed ?? false,
    ...totals,
    failed,
    retired,
    ...(retired === 'environment' && {
      operatorAction:
        'remove DEPUTY_MASTER_KEY_PREVIOUS (the masterKeyPrevious setting) from every Deputy process and restart them; every record now opens with DEPUTY_MASTER_KEY alone',
    }),
  }
  // Recorded before the old key goes: the record says what the retirement rests on.
  await deps.audit.append({
    type: 'master-key.rotated',
    actor: options.actor ?? { type: 'system', id: 'cli' },
    target: { type: 'master_key', id: current.kid },
    data: {
      previousKeyIds,
      resumed: rotation.resumed,
      resealed: rotation.resealed,
      alreadyCurrent: rotation.alreadyCurrent,
      byColumn: rotation.byColumn,
      failed: failed.length,
      retired,
    },
  })
  if (retired === 'file') replaceKeyFile(deps.config.masterKeyFile, [encodeMasterKey(current)])
  return rotation
}

/**
 * Makes the new key current in the file, the old ones kept after it, or finds that a previous
 * run already did (an interrupted rotation). A lock file beside the key file serialises this
 * read-then-write, so two rotations at once agree on one new key.
 */
function beginInFile(
  path: string,
  options: RotateMasterKeyOptions,
): { kid: string; previous: string[]; resumed: boolean } {
  const lock = `${path}.rotate-lock`
  try {
    writeFileSync(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
  } catch {
    throw new DeputyError(
      'ERR_CONFLICT',
      `another \`deputy keys rotate-master\` is changing ${path} (if none is running, delete ${lock})`,
    )
  }
  try {
    const file = readMasterKeyFile(path)
    const wanted =
      options.newKey === undefined ? undefined : parseMasterKey(options.newKey, 'the new key file')
    if (file.keys.length > 1) {
      if (wanted && wanted.kid !== file.key.kid) {
        throw new DeputyError(
          'ERR_CONFLICT',
          `a rotation to master key ${file.key.kid} is unfinished in ${path}: run \`deputy keys rotate-master\` without --new-key-file to finish it first`,
        )
      }
      return { kid: file.key.kid, previous: file.keys.slice(1).map((k) => k.kid), resumed: true }
    }
    const next = wanted ?? parseMasterKey(generateMasterKey(), 'a generated key')
    if (next.kid === file.key.kid) {
      throw new DeputyError('ERR_INVALID_INPUT', 'the new master key is the current one')
    }
    replaceKeyFile(path, [encodeMasterKey(next), encodeMasterKey(file.key)])
    return { kid: next.kid, previous: [file.key.kid], resumed: false }
  } finally {
    rmSync(lock, { force: true })
  }
}

function previousFromEnvironment(previous: string | undefined, currentKid: string): string[] {
  return (previous ?? '')
    .split(',')
    .map((text) => text.trim())
    .filter((text) => text !== '')
    .map((text) => parseMasterKey(text, 'DEPUTY_MASTER_KEY_PREVIOUS').kid)
    .filter((kid) => kid !== currentKid)
}
