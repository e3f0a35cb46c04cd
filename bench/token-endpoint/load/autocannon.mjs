// The load generator, in its own process: warm-up, then a measured window, with autocannon.
// Receives { url, headers, body, connections, warmup, duration } over IPC; answers 'measuring'
// when the measured window starts and { type: 'result', ... } at the end.
import autocannon from 'autocannon'

function run(job, seconds) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: job.url,
        method: 'POST',
        headers: job.headers,
        body: job.body,
        connections: job.connections,
        pipelining: 1,
        duration: seconds,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    )
  })
}

process.once('message', async (job) => {
  try {
    if (job.warmup > 0) await run(job, job.warmup)
    process.send({ type: 'measuring' })
    const r = await run(job, job.duration)
    process.send({
      type: 'result',
      requests: r.requests.total,
      seconds: r.duration,
      rps: r.requests.total / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
    })
  } catch (err) {
    process.send({ type: 'error', message: String(err?.message ?? err) })
  }
  process.disconnect()
})
