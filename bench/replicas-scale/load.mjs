// The load of the scale benchmark, in its own process: one autocannon instance per replica, all
// at once, the connections split evenly between them (as a load balancer would spread them).
// Receives { urls, headers, body, connections, warmup, duration } over IPC; answers 'measuring'
// when the measured window starts and { type: 'result', ... } summed over the replicas at the end.
import autocannon from 'autocannon'

function one(url, job, connections, seconds) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: 'POST',
        headers: job.headers,
        body: job.body,
        connections,
        pipelining: 1,
        duration: seconds,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    )
  })
}

function all(job, seconds) {
  const n = job.urls.length
  return Promise.all(
    job.urls.map((url, i) =>
      one(url, job, Math.floor(job.connections / n) + (i < job.connections % n ? 1 : 0), seconds),
    ),
  )
}

process.once('message', async (job) => {
  try {
    if (job.warmup > 0) await all(job, job.warmup)
    process.send({ type: 'measuring' })
    const rs = await all(job, job.duration)
    const sum = (f) => rs.reduce((a, r) => a + f(r), 0)
    const seconds = Math.max(...rs.map((r) => r.duration))
    process.send({
      type: 'result',
      requests: sum((r) => r.requests.total),
      seconds,
      rps: sum((r) => r.requests.total / r.duration),
      // The slowest replica's percentiles: a load balancer's callers see the worst of them.
      p50: Math.max(...rs.map((r) => r.latency.p50)),
      p99: Math.max(...rs.map((r) => r.latency.p99)),
      perReplica: rs.map((r) => r.requests.total / r.duration),
      non2xx: sum((r) => r.non2xx),
      errors: sum((r) => r.errors),
      timeouts: sum((r) => r.timeouts),
    })
  } catch (err) {
    process.send({ type: 'error', message: String(err?.message ?? err) })
  }
  process.disconnect()
})
