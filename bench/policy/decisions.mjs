// Scenario (b): Cedar decisions through Deputy's engine with 1, 10, 100 and 1,000 stored
// policies: one process per policy count (decisions-worker.mjs), one measured at a time, the
// order rotating each round.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { rotated } from '../lib/runner.mjs'

const WORKER = fileURLToPath(new URL('./decisions-worker.mjs', import.meta.url))

/** Starts a worker and sends it `message`; resolves with its reply, rejects on error or exit. */
function ask(child, message) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      cleanup()
      if (m.type === 'error') reject(new Error(m.message))
      else resolve(m)
    }
    const onExit = (code, signal) => {
      cleanup()
      reject(new Error(`the worker exited (${signal ?? `code ${code}`})`))
    }
    const cleanup = () => {
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
    child.send(message)
  })
}

/**
 * One worker per policy count, each set up and checked (a probe with a known answer, 400 random
 * calls without a policy error) before anything is measured.
 */
export async function setupDecisions(settings, log, problems) {
  const workers = []
  const children = new Set()
  process.on('exit', () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
  })
  for (const count of settings.policyCounts) {
    const child = fork(WORKER, [], { env: { ...process.env, NODE_ENV: 'production' } })
    children.add(child)
    const ready = await ask(child, { type: 'setup', count })
    problems.push(...ready.problems)
    log(
      `  ${String(count).padStart(5)} policies: ${ready.stored} stored, set version ${ready.version}, set up in ${(ready.setupMs / 1000).toFixed(1)} s; probe ${ready.probe.decision} by ${ready.probe.policies.join(', ')}; 400 random calls: ${Object.entries(
        ready.outcomes,
      )
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}`,
    )
    workers.push({ count, child })
  }

  /** One round: for each policy count (rotated), `samples` explain and authorize calls. */
  async function round(index) {
    const results = {}
    for (const { count, child } of rotated(workers, index)) {
      results[count] = {}
      for (const method of ['explain', 'authorize']) {
        const reply = await ask(child, {
          type: 'measure',
          method,
          seed: 1000 + index,
          samples: settings.samples,
          warmup: settings.warmup,
        })
        results[count][method] = reply.result
      }
    }
    return results
  }

  async function close() {
    await Promise.all(
      workers
        .filter(({ child }) => child.exitCode === null && child.signalCode === null)
        .map(
          ({ child }) =>
            new Promise((resolve) => {
              child.once('exit', resolve)
              child.send({ type: 'close' })
            }),
        ),
    )
  }
  return { round, close }
}
