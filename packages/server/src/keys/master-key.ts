import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { ResolvedConfig } from '../config/load.js'
import { DeputyError } from '../lib/errors.js'
import { randomToken, sha256 } from '../lib/random.js'

/** The key-encryption key every sealed record is wrapped with. */
export interface MasterKey {
  /** Short id derived from the key, stored with each sealed record so a rotation can find its key. */
  kid: string
  key: Buffer
}

export interface MasterKeySource {
  key: MasterKey
  /** Where it came from, for the start-up banner (never the key itself). */
  origin: 'environment' | 'file' | 'generated'
}

/**
 * Finds the master key: `masterKey` (environment or config) first, then `masterKeyFile`. In
 * development a missing file is generated with mode 0600; in production Deputy refuses to start
 * without a key someone chose to provide, because a generated key beside the database protects
 * nothing.
 */
export function loadMasterKey(config: ResolvedConfig): MasterKeySource {
  if (config.masterKey)
    return { key: parseMasterKey(config.masterKey, 'DEPUTY_MASTER_KEY'), origin: 'environment' }
  if (existsSync(config.masterKeyFile)) {
    let text: string
    try {
      text = readFileSync(config.masterKeyFile, 'utf8')
    } catch {
      throw new DeputyError(
        'ERR_MASTER_KEY_INVALID',
        `cannot read master key file ${config.masterKeyFile}`,
      )
    }
    return { key: parseMasterKey(text.trim(), config.masterKeyFile), origin: 'file' }
  }
  if (config.mode === 'production') {
    throw new DeputyError(
      'ERR_MASTER_KEY_MISSING',
      'no master key: in production set DEPUTY_MASTER_KEY or DEPUTY_MASTER_KEY_FILE (generate one with `deputy keys generate-master`)',
    )
  }
  const encoded = randomToken(32)
  mkdirSync(dirname(config.masterKeyFile), { recursive: true, mode: 0o700 })
  // `wx`: never overwrite a key another process wrote a moment ago.
  try {
    writeFileSync(config.masterKeyFile, `${encoded}\n`, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadMasterKey(config)
    throw new DeputyError(
      'ERR_MASTER_KEY_INVALID',
      `cannot write master key file ${config.masterKeyFile}`,
    )
  }
  chmodSync(config.masterKeyFile, 0o600)
  return { key: parseMasterKey(encoded, config.masterKeyFile), origin: 'generated' }
}

/** Generates a new master key in its text form (base64url, 32 bytes). */
export function generateMasterKey(): string {
  return randomToken(32)
}

function parseMasterKey(text: string, where: string): MasterKey {
  const key = Buffer.from(text, 'base64url')
  if (key.length !== 32 || key.toString('base64url') !== text.replace(/=+$/, '')) {
    throw new DeputyError(
      'ERR_MASTER_KEY_INVALID',
      `master key from ${where} must be 32 bytes in base64url (43 characters)`,
    )
  }
  return {
    kid: sha256(Buffer.concat([Buffer.from('deputy-master-key-id:'), key])).slice(0, 12),
    key,
  }
}
