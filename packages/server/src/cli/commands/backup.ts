import { chmodSync, existsSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import SQLite from 'better-sqlite3'
import type { Command } from 'commander'
import { checkCheckpoints } from '../../audit/checkpoints.js'
import { verifyAuditChain } from '../../audit/verify.js'
import { isPostgresUrl } from '../../config/load.js'
import { DeputyError } from '../../lib/errors.js'
import { openStore } from '../../store/db.js'
import { existingDatabaseConfig, globalOptions, output } from '../context.js'

/** What a finished backup was checked for. */
export interface BackupReport {
  file: string
  pages: number
  integrity: 'ok'
  auditRecords: number
}

/**
 * Copies a SQLite database with SQLite's online backup (better-sqlite3's `backup`), safe while
 * Deputy serves: a reader in WAL mode blocks no writer, and the copy is one consistent snapshot
 * (the pages left after the first step are copied in one step, so writes from other processes
 * cannot keep restarting it). The copy is then opened and checked — `integrity_check`, the audit
 * chain and its checkpoints — and removed again if any check fails, so a file left behind is
 * always a good backup. It holds sealed data and gets mode 0600.
 */
export async function backupSqlite(source: string, target: string): Promise<BackupReport> {
  if (existsSync(target))
    throw new DeputyError('ERR_INVALID_INPUT', `${target} exists: give a new file for the backup`)
  const db = new SQLite(source, { readonly: true, fileMustExist: true })
  let pages: number
  try {
    const done = await db.backup(target, { progress: ({ remainingPages }) => remainingPages })
    pages = done.totalPages
  } catch (err) {
    rmSync(target, { force: true })
    throw new DeputyError('ERR_DATABASE', `backup of ${source} failed: ${(err as Error).message}`)
  } finally {
    db.close()
  }
  chmodSync(target, 0o600)
  const fail = (problem: string): never => {
    rmSync(target, { force: true })
    rmSync(`${target}-wal`, { force: true })
    rmSync(`${target}-shm`, { force: true })
    throw new DeputyError('ERR_DATABASE', `the backup failed its check and was removed: ${problem}`)
  }
  const copy = new SQLite(target, { readonly: true, fileMustExist: true })
  try {
    const integrity = copy.pragma('integrity_check', { simple: true })
    if (integrity !== 'ok') fail(`integrity_check says ${String(integrity)}`)
  } finally {
    copy.close()
  }
  const store = openStore(target)
  try {
    const chain = await verifyAuditChain(store)
    if (!chain.ok) fail(`audit chain broken at ${chain.firstBad?.problem ?? 'an unknown record'}`)
    const checkpoint = await checkCheckpoints(store, chain, [])
    if (checkpoint.problem) fail(`audit chain cut short: ${checkpoint.problem}`)
    return { file: target, pages, integrity: 'ok', auditRecords: chain.records }
  } finally {
    await store.close()
  }
}

/** `deputy backup <file>`: an online, checked copy of a SQLite database. */
export function registerBackup(program: Command): void {
  program
    .command('backup')
    .argument('<file>', 'where to write the copy (a new file)')
    .description(
      'copy the SQLite database while Deputy serves, then check the copy (integrity, audit chain); on PostgreSQL, says to use pg_dump (docs/deploy.md)',
    )
    .action(async (file: string, _opts, command: Command) => {
      const options = globalOptions(command)
      const config = existingDatabaseConfig(options)
      if (isPostgresUrl(config.database))
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'deputy backup copies SQLite databases; back up PostgreSQL with pg_dump (pg_dump --format=custom --file=deputy.dump "$DEPUTY_DATABASE_URL"), see docs/deploy.md "Backups"',
        )
      const report = await backupSqlite(config.database, resolve(file))
      output(
        options,
        report,
        () =>
          `backed up ${config.database} to ${report.file}: ${report.pages} pages, integrity ok, audit chain intact (${report.auditRecords} records). Keep the master key too: the copy's secrets are sealed with it.`,
      )
    })
}
