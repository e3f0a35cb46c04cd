import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import type { Actor } from '../../audit/types.js'
import { generateMasterKey, writeKeyFileOnce } from '../../keys/master-key.js'
import { type MasterKeyRotation, rotateMasterKey } from '../../keys/rotate-master.js'
import { DeputyError } from '../../lib/errors.js'
import { globalOptions, output, table, withDeputy } from '../context.js'

const CLI: Actor = { type: 'system', id: 'cli' }

/** `deputy keys …`: signing keys (list, rotate), a fresh master key, and master-key rotation. */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('signing keys and the master key')

  keys
    .command('list')
    .description('list signing keys: the active one and retired ones, and which are published')
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const list = await withDeputy(options, (deps) => deps.signingKeys.list())
      output(options, { keys: list }, () =>
        table(
          list.map((k) => ({
            kid: k.kid,
            alg: k.alg,
            status: k.status,
            created: k.createdAt,
            retired: k.retiredAt,
            'publish-until': k.publishUntil,
            published: k.published ? 'yes' : 'no',
          })),
          ['kid', 'alg', 'status', 'created', 'retired', 'publish-until', 'published'],
        ),
      )
    })

  keys
    .command('rotate')
    .description(
      'make a new signing key sign; the old one stays published until its last token has expired',
    )
    .action(async (_opts: unknown, command: Command) => {
      const options = globalOptions(command)
      const rotation = await withDeputy(options, (deps) => deps.signingKeys.rotate(CLI))
      output(options, rotation, () => {
        const { active, retired } = rotation
        const lines = [`new signing key ${active.kid} (${active.alg}) is active`]
        lines.push(
          retired
            ? `previous key ${retired.kid} stays published until ${retired.publishUntil}`
            : 'there was no previous key',
        )
        return lines.join('\n')
      })
    })

  keys
    .command('generate-master')
    .description('print a new random master key (for DEPUTY_MASTER_KEY or a secret file)')
    .option('--file <path>', 'write it to a new file with mode 0600 instead of printing it')
    .action((opts: { file?: string }, command: Command) => {
      const options = globalOptions(command)
      // Needs no database or configured key: this is how someone gets their first key.
      const key = generateMasterKey()
      if (opts.file) {
        const path = resolve(opts.file)
        if (!writeKeyFileOnce(path, key)) {
          throw new DeputyError(
            'ERR_CONFLICT',
            `${path} already exists; a master key file is never overwritten`,
          )
        }
        output(options, { file: path }, () => `wrote a new master key to ${path} (mode 0600)`)
        return
      }
      output(options, { masterKey: key }, () => key)
    })

  keys
    .command('rotate-master')
    .description(
      'seal every sealed record with a new master key while Deputy keeps serving, then retire the old key. With a key file, Deputy writes the new key into it and serving processes follow the file. With DEPUTY_MASTER_KEY, first make the new key current on every process with the old one in DEPUTY_MASTER_KEY_PREVIOUS (two rolling deployments: docs/security.md). An interrupted run is finished by running it again',
    )
    .option(
      '--new-key-file <path>',
      'the new key (e.g. from `deputy keys generate-master --file`); default: a generated one',
    )
    .option(
      '--retire-despite-failures',
      'remove the old key even when some records did not open (they cannot open with any key)',
    )
    .action(
      async (opts: { newKeyFile?: string; retireDespiteFailures?: boolean }, command: Command) => {
        const options = globalOptions(command)
        const newKey = opts.newKeyFile ? readNewKey(resolve(opts.newKeyFile)) : undefined
        const rotation = await withDeputy(options, (deps) =>
          rotateMasterKey(deps, {
            actor: CLI,
            ...(newKey !== undefined && { newKey }),
            ...(opts.retireDespiteFailures && { retireDespiteFailures: true }),
          }),
        )
        output(options, rotation, () => describeRotation(rotation))
        if (rotation.retired === 'kept') process.exitCode = 1
      },
    )
}

/** The key in a key file: its first line that is not a note. */
function readNewKey(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new DeputyError('ERR_NOT_FOUND', `cannot read the new key file ${path}`)
  }
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '' && !l.startsWith('#'))
  if (!line) throw new DeputyError('ERR_INVALID_INPUT', `the new key file ${path} holds no key`)
  return line
}

function describeRotation(r: MasterKeyRotation): string {
  const lines = [
    `${r.resumed ? 'finished the interrupted rotation: ' : ''}every record is sealed with master key ${r.masterKeyId}`,
    `re-sealed ${r.resealed} record(s); ${r.alreadyCurrent} already used it`,
  ]
  for (const [column, n] of Object.entries(r.byColumn)) lines.push(`  ${column}: ${n}`)
  for (const f of r.failed) {
    const key = Object.entries(f.key)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
    lines.push(`did not open: ${f.table}.${f.column} ${key}: ${f.reason}`)
  }
  if (r.retired === 'file') lines.push(`removed previous key(s) ${r.previousKeyIds.join(', ')}`)
  if (r.retired === 'environment') lines.push(r.operatorAction as string)
  if (r.retired === 'kept') {
    lines.push(
      `kept previous key(s) ${r.previousKeyIds.join(', ')} because ${r.failed.length} record(s) did not open: repair or delete them and run again, or pass --retire-despite-failures`,
    )
  }
  return lines.join('\n')
}
