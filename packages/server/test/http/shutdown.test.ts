import { Agent, request } from 'node:http'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { listen, type RunningServer } from '../../src/server.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 9 §11: on SIGTERM the process must exit promptly — in-flight requests finish, each with
// `Connection: close`, and keep-alive connections are closed instead of holding the server open
// until their idle timeout.

interface Answer {
  status: number
  connection: string | undefined
  socket: Socket
}

function get(url: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume()
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          connection: res.headers.connection,
          socket: req.socket as Socket,
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

const closed = (socket: Socket) =>
  socket.destroyed
    ? Promise.resolve()
    : new Promise<void>((done) => socket.once('close', () => done()))

describe('graceful shutdown (SIGTERM)', () => {
  let deputy: TestDeputy
  let server: RunningServer | undefined
  let agent: Agent
  afterEach(async () => {
    agent?.destroy()
    await server?.shutdown()
    server = undefined
    await deputy?.database.dispose()
  })

  async function start(): Promise<RunningServer> {
    deputy = await startTestDeputy()
    return listen(deputy, { port: 0, host: '127.0.0.1' })
  }

  it('closes an idle keep-alive connection at once instead of waiting for its timeout', async () => {
    server = await start()
    agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 })
    const first = await get(`${server.url}/healthz`, agent)
    expect(first.status).toBe(200)
    expect(first.socket.destroyed).toBe(false)
    await server.shutdown()
    server = undefined
    // By the time shutdown has finished, the idle socket is gone.
    await closed(first.socket)
    expect(first.socket.destroyed).toBe(true)
  })

  it('lets an in-flight request finish and answers it with Connection: close', async () => {
    deputy = await startTestDeputy()
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let arrived: () => void = () => {}
    const reached = new Promise<void>((resolve) => {
      arrived = resolve
    })
    deputy.app.get('/test-slow', async (c) => {
      arrived()
      await held
      return c.text('finished')
    })
    server = await listen(deputy, { port: 0, host: '127.0.0.1' })
    agent = new Agent({ keepAlive: true })
    const pending = get(`${server.url}/test-slow`, agent)
    await reached
    const stopping = server.shutdown()
    server = undefined
    release()
    const answer = await pending
    expect(answer.status).toBe(200)
    expect(answer.connection).toBe('close')
    await stopping
    await closed(answer.socket)
  })
})
