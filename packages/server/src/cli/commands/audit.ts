import { once } from 'node:events'
import { createWriteStream, existsSync, readFileSync } from 'node:fs'
import type { Writable } from 'node:stream'
import type { Command } from 'commander'
import { checkCheckpoints, writeCheckpoint } from '../../audit/checkpoints.js'
import { exportAudit, tailAudit } from '../../audit/query.js'
import type { Actor, AuditRecord } from '../../audit/types.js'
import { verifyAuditChain } from '../../audit/verify.js'
import { createKeyedDigest, LOGIN_EMAIL_DIGEST, normaliseEmail } from '../../keys/digest.js'
import { loadMasterKey } from '../../keys/master-key.js'
import { DeputyError } from '../../lib/errors.js'
import type { Store } from '../../store/db.js'
import {
  existingDatabaseConfig,
  globalOptions,
  output,
  table,
  withDeputy,
  withStore,
} from '../context.js'

const MAX_TAIL = 10_000

/** `deputy audit verify | tail | export`: check, read and export the audit chain. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('check, read and export the audit chain')

  audit
    .command('verify')
    .description(
      'check every record of the audit chain, and that none was cut off its end since the newest checkpoint; exit 1 naming the first problem',
    )
    .option(
      '--checkpoint <jws-or-file>',
      'also check against a checkpoint kept elsewhere (its JWS, or a file holding it); repeatable',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(async (opts: { checkpoint?: string[] }, command: Command) => {
      const options = globalOptions(command)
      const given = (opts.checkpoint ?? []).map(readCheckpointArgument)
      const result = await withStore(options, async (store) => {
        const chain = await verifyAuditChain(store)
        return { ...chain, checkpoint: await checkCheckpoints(store, chain, given) }
      })
      const ok = result.ok && result.checkpoint.problem === undefined
      if (ok) {
        const latest = result.checkpoint.latest
        output(
          options,
          result,
          () =>
            `audit chain intact: ${result.records} records${latest ? `; holds record ${latest.seq} of the checkpoint of ${latest.time}` : '; no checkpoint yet (`deputy audit checkpoint`)'}`,
        )
        return
      }
      if (options.json) {
        output(options, { ...result, ok: false }, () => '')
        process.exitCode = 1
        return
      }
      throw new DeputyError(
        'ERR_AUDIT_CHAIN_BROKEN',
        result.ok
          ? `audit chain cut short: ${result.checkpoint.problem}`
          : `audit chain broken at ${result.firstBad?.problem ?? 'an unknown record'}`,
      )
    })

  audit
    .command('checkpoint')
    .description(
      "sign a checkpoint of the chain's head now and print it (keep the JWS elsewhere to check the chain against later)",
    )
    .action(async (_opts, command: Command) => {
      const options = globalOptions(command)
      const checkpoint = await withDeputy(options, (deps) =>
        writeCheckpoint({ ...deps, issuer: deps.config.issuer }),
      )
      if (!checkpoint) {
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'the audit chain is empty: nothing to checkpoint',
        )
      }
      output(options, checkpoint, () =>
        [`checkpoint of record ${checkpoint.seq} at ${checkpoint.time}:`, checkpoint.jws].join(
          '\n',
        ),
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
      const { records, name } = await withStore(options, async (store) => {
        const records = await tailAudit(store, { limit, ...(opts.type ? { type: opts.type } : {}) })
        return { records, name: await actorNamer(store, records) }
      })
      output(options, records, () =>
        table(
          records.map((r) => tailRow(r, name)),
          TAIL_COLUMNS,
        ),
      )
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
        loadMasterKey(existingDatabaseConfig(options)).key,
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

function tailRow(record: AuditRecord, name: (actor: Actor) => string): Record<string, unknown> {
  return {
    seq: record.seq,
    time: record.time,
    type: record.type,
    actor: name(record.actor),
    on_behalf_of: record.onBehalfOf ? name(record.onBehalfOf) : null,
    target: record.target ? name(record.target as Actor) : null,
    decision: record.decision,
    reason: record.reason,
  }
}

/**
 * Names actors, people and targets the same way on every row, whatever each module put in the
 * record: `user:<email>` (looked up by id, since many records carry only the id), `client:<client_id>`
 * (an agent is a client; its name can change and need not be unique), `operator:cli` and
 * `operator:admin-key:<id>` for the people running Deputy, `system:<id>` for Deputy itself. A
 * person Deputy no longer knows keeps what the record names them by: their id, or, for a typed
 * email that matched no account, its digest (`deputy audit digest` finds it).
 */
async function actorNamer(store: Store, records: AuditRecord[]): Promise<(actor: Actor) => string> {
  const userIds = new Set<string>()
  for (const r of records) {
    for (const who of [r.actor, r.onBehalfOf, r.target])
      if (who?.type === 'user') userIds.add(who.id)
  }
  const emails = new Map<string, string>()
  if (userIds.size > 0) {
    const rows = await store.db
      .selectFrom('users')
      .select(['id', 'email'])
      .where('id', 'in', [...userIds])
      .execute()
    for (const row of rows) emails.set(row.id, row.email)
  }
  return (actor) => {
    switch (actor.type) {
      case 'user':
        return `user:${emails.get(actor.id) ?? (actor.id === 'unknown' ? actor.label : undefined) ?? (actor.label?.includes('@') ? actor.label : actor.id)}`
      case 'client':
      case 'agent':
        return `client:${actor.id}`
      case 'system':
        return actor.id === 'cli' || actor.id.startsWith('admin-key:')
          ? `operator:${actor.id}`
          : `system:${actor.id}`
      default:
        return `${actor.type}:${actor.id}`
    }
  }
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

/** A `--checkpoint` value: the JWS itself, or a file holding it. */
function readCheckpointArgument(value: string): string {
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value.trim())) return value.trim()
  if (!existsSync(value)) {
    throw new DeputyError(
      'ERR_INVALID_INPUT',
      `--checkpoint ${value.slice(0, 80)} is neither a checkpoint JWS nor a file`,
    )
  }
  return readFileSync(value, 'utf8').trim()
}
