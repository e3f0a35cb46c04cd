import { resolve } from 'node:path'
import type { Command } from 'commander'
import type { Actor } from '../../audit/types.js'
import { generateMasterKey, writeKeyFileOnce } from '../../keys/master-key.js'
import { DeputyError } from '../../lib/errors.js'
import { globalOptions, output, table, withDeputy } from '../context.js'

const CLI: Actor = { type: 'system', id: 'cli' }

/** `deputy keys …`: signing keys (list, rotate) and a fresh master key. */
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
}
