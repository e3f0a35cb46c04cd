// The checks run before the rounds and before and after every run.
import { ECHO_TEXT, toolCallBody, toolCallHeaders } from './common.mjs'

/** The JSON-RPC message of a response: a JSON body, or the first `data:` event of an SSE stream. */
function message(contentType, text) {
  if ((contentType ?? '').startsWith('text/event-stream')) {
    const data = text
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trim())
      .find((line) => line.length > 0)
    if (data === undefined) throw new Error('SSE response without a data event')
    return JSON.parse(data)
  }
  return JSON.parse(text)
}

/** One tools/call: HTTP 200 and the echo tool's result (its text argument, not an error). */
export async function verifyCall(url, token) {
  const text = `verify ${Math.random().toString(36).slice(2)}`
  const response = await fetch(url, {
    method: 'POST',
    headers: toolCallHeaders(token),
    body: toolCallBody(7, text),
  })
  const body = await response.text()
  if (response.status !== 200)
    throw new Error(`tools/call answered ${response.status}: ${body.slice(0, 200)}`)
  const reply = message(response.headers.get('content-type'), body)
  if (reply.id !== 7) throw new Error(`tools/call answered id ${reply.id}, sent 7`)
  if (reply.error) throw new Error(`tools/call answered an error: ${JSON.stringify(reply.error)}`)
  const result = reply.result
  if (result?.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`)
  if (result?.content?.[0]?.text !== text)
    throw new Error(`unexpected result: ${JSON.stringify(result).slice(0, 200)}`)
  // The benchmark's own body must work too (the load sends exactly this).
  const bench = await fetch(url, {
    method: 'POST',
    headers: toolCallHeaders(token),
    body: toolCallBody(),
  })
  const benchReply = message(bench.headers.get('content-type'), await bench.text())
  if (bench.status !== 200 || benchReply.result?.content?.[0]?.text !== ECHO_TEXT)
    throw new Error(
      `the load's request answered ${bench.status}: ${JSON.stringify(benchReply).slice(0, 200)}`,
    )
}

/** A tools/call with this token (or none) is refused with `status` and does not reach the tool. */
export async function verifyRefused(url, token, status, what) {
  const response = await fetch(url, {
    method: 'POST',
    headers: toolCallHeaders(token),
    body: toolCallBody(),
  })
  const body = await response.text()
  if (response.status !== status)
    throw new Error(`${what}: expected ${status}, got ${response.status}: ${body.slice(0, 200)}`)
  if (body.includes(ECHO_TEXT)) throw new Error(`${what}: the tool's result came back`)
  if (status === 401 && !/^Bearer\b/i.test(response.headers.get('www-authenticate') ?? ''))
    throw new Error(`${what}: 401 without a Bearer challenge`)
}

/** Everything checked for one server: a call works; with auth, no token and a wrong audience get 401. */
export async function verifyServer(server) {
  await verifyCall(server.url, server.token)
  if (!server.auth) return
  await verifyRefused(server.url, undefined, 401, 'no token')
  await verifyRefused(server.url, server.wrongAudienceToken, 401, 'wrong-audience token')
}
