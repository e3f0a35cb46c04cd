import { spawn } from 'node:child_process'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { verifyAuditChain } from '../../src/audit/verify.js'
import { DIALECTS, skipDialect, type TestDatabase } from '../helpers/databases.js'
import { APPENDER, openMigrated } from './helpers.js'

/**
 * Starts a child that appends one event at a time and prints each seq once `append` resolved,
 * and kills it with SIGKILL — no chance to flush or clean up — after `killAfter` acknowledgements.
 * Returns the seqs it acknowledged.
 */
function appendUntilKilled(database: string, killAfter: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [APPENDER, database, '100000', 'crash', 'ack'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const acked: number[] = []
    let pending = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      pending += chunk
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) acked.push(Number(line))
      if (acked.length >= killAfter) child.kill('SIGKILL')
    })
    child.on('error', reject)
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`appender ended on its own (${signal})`))
      else resolve(acked)
    })
  })
}

// Issue 2 §6: appending must not lose acknowledged events on a crash.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `audit appends survive a crash (${dialect.name})`,
    () => {
      let database: TestDatabase
      beforeEach(async () => {
        database = await dialect.create()
        await (await openMigrated(database.url)).close()
      })
      afterEach(() => database.dispose())

      it('keeps every acknowledged event of a process killed mid-append, on an intact chain', async () => {
        const acked = await appendUntilKilled(database.url, 60)
        expect(acked.length).toBeGreaterThanOrEqual(60)
        expect(acked).toEqual(Array.from({ length: acked.length }, (_, i) => i + 1))

        const store = await openMigrated(database.url)
        try {
          const verification = await verifyAuditChain(store)
          expect(verification.ok).toBe(true)
          // Every acknowledged record is there; at most the one in flight was also committed.
          expect(verification.records).toBeGreaterThanOrEqual(acked.length)
          expect(verification.records).toBeLessThanOrEqual(acked.length + 1)
        } finally {
          await store.close()
        }
      })
    },
  )
}
