// The poll load, in its own process: autocannon POSTs the CIBA token request, each request naming
// the next of the pending auth_req_ids in turn. Receives { url, authorization, authReqIds,
// connections, warmup, duration } over IPC; answers 'measuring' when the measured window starts
// and { type: 'result', … } at the end.
import autocannon from 'autocannon'

function run(job, seconds) {
  const bodies = job.authReqIds.map((id) =>
    new URLSearchParams({
      grant_type: 'urn:openid:params:grant-type:ciba',
      auth_req_id: id,
    }).toString(),
  )
  let next = 0
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: job.url,
        connections: job.connections,
        pipelining: 1,
        duration: seconds,
        requests: [
          {
            method: 'POST',
            path: '/token',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              authorization: job.authorization,
            },
            setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
          },
        ],
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
      statusCodes: Object.fromEntries(
        Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]),
      ),
      errors: r.errors,
      timeouts: r.timeouts,
    })
  } catch (err) {
    process.send({ type: 'error', message: String(err?.message ?? err) })
  }
  process.disconnect()
})
