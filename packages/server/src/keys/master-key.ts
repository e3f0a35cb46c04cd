import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
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
  if (config.masterKey) {
    return {
      key: parseMasterKey(config.masterKey, 'DEPUTY_MASTER_KEY (the masterKey setting)'),
      origin: 'environment',
    }
  }
  if (existsSync(config.masterKeyFile)) return readMasterKeyFile(config.masterKeyFile)
  if (config.mode === 'production') {
    throw new DeputyError(
      'ERR_MASTER_KEY_MISSING',
      'no master key: in production set DEPUTY_MASTER_KEY or DEPUTY_MASTER_KEY_FILE (generate one with `deputy keys generate-master`)',
    )
  }
  // Another process may win the race to create it; whatever is on disk then is the key.
  const created = writeKeyFileOnce(config.masterKeyFile, generateMasterKey())
  const onDisk = readMasterKeyFile(config.masterKeyFile)
  return created ? { ...onDisk, origin: 'generated' } : onDisk
}

/** Generates a new master key in its text form (base64url, 32 bytes). */
export function generateMasterKey(): string {
  return randomToken(32)
}

/**
 * Writes a new key file with mode 0600 without ever exposing a half-written file: the key goes to
 * a private temporary file that is then hard-linked into place, which fails if the name exists. So
 * two first starts at once agree on one key, and a reader never sees an empty file.
 */
export function writeKeyFileOnce(path: string, encoded: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const temporary = `${path}.${process.pid}.${randomToken(6)}.tmp`
  try {
    writeFileSync(temporary, `${encoded}\n`, { mode: 0o600, flag: 'wx' })
    // The umask can only narrow the mode; chmod makes it exactly 0600 whatever the umask.
    chmodSync(temporary, 0o600)
    linkSync(temporary, path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new DeputyError(
      'ERR_MASTER_KEY_INVALID',
      `cannot write master key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    )
  } finally {
    rmSync(temporary, { force: true })
  }
}

function readMasterKeyFile(path: string): MasterKeySource {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new DeputyError('ERR_MASTER_KEY_INVALID', `cannot read master key file ${path}`)
  }
  return { key: parseMasterKey(text, `file ${path}`), origin: 'file' }
}

/**
 * Accepts base64url (what Deputy generates) and standard base64 (what `openssl rand -base64 32`
 * prints), with or without padding; the message never repeats the value, which may be a real key.
 */
function parseMasterKey(text: string, where: string): MasterKey {
  const normalized = text.trim().replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  const key = Buffer.from(normalized, 'base64url')
  if (key.length !== 32 || key.toString('base64url') !== normalized) {
    throw new DeputyError(
      'ERR_MASTER_KEY_INVALID',
      `master key from ${where} is malformed: it must be 32 random bytes in base64url (43 characters; \`deputy keys generate-master\` makes one)`,
    )
  }
  return {
    kid: sha256(Buffer.concat([Buffer.from('deputy-master-key-id:'), key])).slice(0, 12),
    key,
  }
}
