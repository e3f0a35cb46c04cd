// Full authorization-code flows per second, in their own process: `concurrency` loops, each
// running authorize -> (consent) -> code -> token back to back. Receives { info, concurrency,
// warmup, duration } over IPC; answers 'measuring' and then { type: 'result', ... }.
import { percentile } from '../../lib/runner.mjs'
import { client } from '../lib/flow.mjs'

async function loop(c, until, latencies, failures) {
  while (performance.now() < until) {
    const start = performance.now()
    try {
      await c.flow()
      latencies?.push(performance.now() - start)
    } catch (err) {
      failures.count++
      failures.first ??= String(err?.message ?? err)
      if (failures.count > 50)
        throw new Error(`more than 50 failed flows; first: ${failures.first}`)
    }
  }
}

process.once('message', async (job) => {
  try {
    const c = client(job.info)
    await c.signIn()
    // The first flow may meet the consent page; that one decision is remembered by both servers.
    await c.flow()
    const failures = { count: 0, first: undefined }
    const warmEnd = performance.now() + job.warmup * 1000
    await Promise.all(
      Array.from({ length: job.concurrency }, () => loop(c, warmEnd, null, failures)),
    )
    process.send({ type: 'measuring' })
    const latencies = []
    const measuredFailures = { count: 0, first: undefined }
    const start = performance.now()
    const end = start + job.duration * 1000
    await Promise.all(
      Array.from({ length: job.concurrency }, () => loop(c, end, latencies, measuredFailures)),
    )
    const seconds = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    process.send({
      type: 'result',
      requests: latencies.length,
      seconds,
      rps: latencies.length / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      non2xx: measuredFailures.count,
      errors: 0,
      timeouts: 0,
      firstError: measuredFailures.first,
    })
  } catch (err) {
    process.send({ type: 'error', message: String(err?.message ?? err) })
  }
  process.disconnect()
})
