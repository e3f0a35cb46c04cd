// Latency of single calls, in its own process: `concurrency` loops (1 by default) each send one
// request, wait for the whole response, then send the next, over keep-alive connections. Every
// call is timed with hrtime, so the percentiles have microsecond resolution (autocannon's
// histogram counts whole milliseconds, too coarse for sub-millisecond calls).
// Receives { url, headers, body, concurrency, warmup, duration } over IPC; answers 'measuring'
// when the measured window starts and { type: 'result', ... } at the end.
import { Agent, request } from 'node:http'
import { percentile } from '../../lib/runner.mjs'

function call(agent, url, headers, body) {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.on('data', () => {})
        res.on('end', () => resolve({ status: res.statusCode }))
        res.on('error', (error) => resolve({ error }))
      },
    )
    req.on('error', (error) => resolve({ error }))
    req.end(body)
  })
}

async function run(job, seconds, record) {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency })
  const url = new URL(job.url)
  const stats = { requests: 0, non2xx: 0, errors: 0, firstError: undefined, latencies: [] }
  const end = performance.now() + seconds * 1000
  const started = performance.now()
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = process.hrtime.bigint()
      const r = await call(agent, url, job.headers, job.body)
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (r.error) {
        stats.errors++
        stats.firstError ??= r.error.message
      } else if (r.status < 200 || r.status > 299) {
        stats.non2xx++
        stats.firstError ??= `HTTP ${r.status}`
      } else {
        stats.requests++
        if (record) stats.latencies.push(ms)
      }
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, loop))
  stats.seconds = (performance.now() - started) / 1000
  agent.destroy()
  return stats
}

process.once('message', async (job) => {
  try {
    if (job.warmup > 0) await run(job, job.warmup, false)
    process.send({ type: 'measuring' })
    const s = await run(job, job.duration, true)
    const sorted = s.latencies.sort((a, b) => a - b)
    process.send({
      type: 'result',
      requests: s.requests,
      seconds: s.seconds,
      rps: s.requests / s.seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      non2xx: s.non2xx,
      errors: s.errors,
      timeouts: 0,
      firstError: s.firstError,
    })
  } catch (err) {
    process.send({ type: 'error', message: String(err?.message ?? err) })
  }
  process.disconnect()
})
