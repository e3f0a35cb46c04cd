import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import type { Command } from 'commander'
import { exportAudit, tailAudit } from '../../audit/query.js'
import type { Actor, AuditRecord } from '../../audit/types.js'
import { verifyAuditChain } from '../../audit/verify.js'
import { createKeyedDigest, LOGIN_EMAIL_DIGEST, normaliseEmail } from '../../keys/digest.js'
import { loadMasterKey } from '../../keys/master-key.js'
import { DeputyError } from '../../lib/errors.js'
import { commandConfig, globalOptions, output, table, withStore } from '../context.js'

const MAX_TAIL = 10_000

/** `deputy audit verify | tail | export`: check, read and export the audit chain. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('check, read and export the audit chain')

  audit
    .command('verify')
    .description('check every record of the audit chain; exit 1 naming the first bad one')
    .action(async (_opts, command: Command) => {
      const options = globalOptions(command)
      const result = await withStore(options, (store) => verifyAuditChain(store))
      if (result.ok) {
        output(options, result, () => `audit chain intact: ${result.records} records`)
        return
      }
      if (options.json) {
        output(options, result, () => '')
        process.exitCode = 1
        return
      }
      throw new DeputyError(
        'ERR_AUDIT_CHAIN_BROKEN',
        `audit chain broken at ${result.firstBad?.problem ?? 'an unknown record'}`,
      )
    })

  audit
    .command('tail')
    .description('show the newest audit records')
    .option('-n, --lines <count>', 'how many records', '20')
    .option('--type <type>', 'only records of this type, e.g. user.created')
    .action(async (opts: { lines: string; type?: string }, command: Command) => {
      const options = globalOptions(command)
      const limit = Number(opts.lines)
      if (!/^\d+$/.test(opts.lines) || limit < 1 || limit > MAX_TAIL) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          `-n must be a whole number from 1 to ${MAX_TAIL}, not "${opts.lines}"`,
        )
      }
      const records = await withStore(options, (store) =>
        tailAudit(store, { limit, ...(opts.type ? { type: opts.type } : {}) }),
      )
      output(options, records, () => table(records.map(tailRow), TAIL_COLUMNS))
    })

  audit
    .command('digest')
    .argument('<email>', 'an email someone may have typed at sign-in')
    .description(
      'print the digest a typed email that matches no account is recorded as (login.failed, the sign-in throttle); needs the master key',
    )
    .action((email: string, _opts, command: Command) => {
      const options = globalOptions(command)
      const digest = createKeyedDigest(
        loadMasterKey(commandConfig(options)).key,
        LOGIN_EMAIL_DIGEST,
      )(normaliseEmail(email))
      output(options, { email, digest }, () => digest)
    })

  audit
    .command('export')
    .description('write the whole chain, with hashes, one JSON record per line')
    .option('--jsonl', 'JSON Lines (the only format, and the default)')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (opts: { jsonl?: boolean; out?: string }, command: Command) => {
      const options = globalOptions(command)
      const count = await withStore(options, async (store) => {
        const sink = opts.out ? await openOut(opts.out) : process.stdout
        // A reader that stops early (`| head`) closes the pipe; that ends the export, quietly.
        const failures: Error[] = []
        sink.on('error', (err) => failures.push(err))
        let n = 0
        for await (const record of exportAudit(store)) {
          if (sink.destroyed) break
          await write(sink, `${JSON.stringify(record)}\n`).catch(() => {})
          n++
        }
        const failure = failures.find((err) => (err as NodeJS.ErrnoException).code !== 'EPIPE')
        if (failure) {
          throw new DeputyError(
            'ERR_INVALID_INPUT',
            `cannot write ${opts.out ?? 'the export'}: ${failure.message}`,
          )
        }
        if (sink !== process.stdout) {
          sink.end()
          await once(sink, 'finish')
        }
        return n
      })
      if (opts.out) {
        output(
          options,
          { file: opts.out, records: count },
          () => `exported ${count} audit records to ${opts.out}`,
        )
      }
    })
}

const TAIL_COLUMNS = [
  'seq',
  'time',
  'type',
  'actor',
  'on_behalf_of',
  'target',
  'decision',
  'reason',
]

function tailRow(record: AuditRecord): Record<string, unknown> {
  return {
    seq: record.seq,
    time: record.time,
    type: record.type,
    actor: actorLabel(record.actor),
    on_behalf_of: record.onBehalfOf ? actorLabel(record.onBehalfOf) : null,
    target: record.target ? `${record.target.type}:${record.target.id}` : null,
    decision: record.decision,
    reason: record.reason,
  }
}

function actorLabel(actor: Actor): string {
  return `${actor.type}:${actor.label ?? actor.id}`
}

async function openOut(file: string): Promise<Writable> {
  const stream = createWriteStream(file)
  try {
    await once(stream, 'open')
  } catch (err) {
    throw new DeputyError('ERR_INVALID_INPUT', `cannot write ${file}: ${(err as Error).message}`)
  }
  return stream
}

// Waits for the stream to drain so a large chain is streamed, not buffered in memory; rejects
// when the stream fails instead.
async function write(sink: Writable, chunk: string): Promise<void> {
  if (!sink.write(chunk)) await once(sink, 'drain')
}
