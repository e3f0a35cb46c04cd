import { statSync } from 'node:fs'
import type { MasterKey, MasterKeySource } from './master-key.js'
import { readMasterKeyFile } from './master-key.js'

/**
 * The master keys one process knows: the current key seals, every known key opens. When the
 * keys come from a file, the ring notices a rewritten file (`deputy keys rotate-master` replaces
 * it with a rename) and re-reads it before each seal, and before an open that meets a key id it
 * does not know. So a serving Deputy seals with the new key from the moment the file names it,
 * and opens what another process already sealed with it, without a restart.
 *
 * A running process never forgets a key it has known: a record sealed by a slow writer with the
 * previous key just before the rotation retired it still opens here (docs/security.md).
 */
export interface MasterKeyRing {
  /** The key that seals now. */
  current(): MasterKey
  /** The key with this id, if this process knows it (re-reading the key file first if need be). */
  find(kid: string): MasterKey | undefined
}

/** Deps for a ring: where the keys came from and, for a file, its path. */
export interface MasterKeyRingOptions {
  source: MasterKeySource
  /** The key file to follow; omit for keys from the environment (they change only on restart). */
  file?: string
}

/** A ring over fixed keys (the first seals), or over a key file it follows. */
export function createMasterKeyRing(options: MasterKeyRingOptions): MasterKeyRing {
  let current = options.source.key
  const known = new Map(options.source.keys.map((k) => [k.kid, k]))
  const file = options.file
  let seen = file ? fingerprint(file) : undefined

  /** Re-reads the key file when it is not the one last read (a rename gives it a new inode). */
  function follow(): void {
    if (!file) return
    const now = fingerprint(file)
    if (now === undefined || now === seen) return
    try {
      const read = readMasterKeyFile(file)
      for (const k of read.keys) known.set(k.kid, k)
      current = read.key
      seen = now
    } catch {
      // A file that cannot be read now is read again next time; the keys known so far still work.
    }
  }

  return {
    current() {
      follow()
      return current
    },
    find(kid) {
      const found = known.get(kid)
      if (found) return found
      follow()
      return known.get(kid)
    },
  }
}

function fingerprint(path: string): string | undefined {
  try {
    const s = statSync(path, { bigint: true })
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`
  } catch {
    return undefined
  }
}
