// What both the kit's HTTP entry and Deputy's gateway do with an incoming MCP request before its
// JSON is read: take its body within a bound, and take the client's credentials off it.

/**
 * The request's body, read once and at most `maxBytes` of it: a declared length over the bound is
 * refused unread, a stream is cancelled as soon as it goes over.
 */
export async function readBodyWithin(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array | 'too_large'> {
  const length = request.headers.get('content-length')
  const declared = Number(length)
  if (declared > maxBytes) return 'too_large'
  // With a declared length within the bound, HTTP/1.1 framing bounds what arrives: read it in one
  // piece (@hono/node-server then reads straight from the socket, no web stream). A Request built
  // in-process could carry more than it declares, so the size is checked again.
  if (length !== null && Number.isSafeInteger(declared) && declared >= 0) {
    const whole = new Uint8Array(await request.arrayBuffer())
    return whole.byteLength > maxBytes ? 'too_large' : whole
  }
  if (request.body === null) return new Uint8Array()
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = request.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        await reader.cancel()
        return 'too_large'
      }
      chunks.push(value)
    }
  } finally {
    reader.releaseLock()
  }
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks)
}

/**
 * The request without the client's token and its DPoP proof, so that nothing downstream (the SDK,
 * tools, `ctx.http.req`, an upstream) can pass them on (MCP authorization "Token Handling",
 * "Access Token Privilege Restriction"). Deleted in place: the caller is the request's last reader
 * of those headers, and a copy of the headers and of the Request cost more than the rest of the
 * kit's gate but the token check. Where a runtime made the headers immutable, a fresh Request
 * from the parts downstream reads (URL, method, headers, abort signal, and the body unless
 * `bodyRead`).
 */
export function withoutCredentials(request: Request, bodyRead: boolean): Request {
  try {
    request.headers.delete('authorization')
    request.headers.delete('dpop')
    return request
  } catch {
    const headers = new Headers(request.headers)
    headers.delete('authorization')
    headers.delete('dpop')
    const method = request.method
    const body = bodyRead || method === 'GET' || method === 'HEAD' ? null : request.body
    return new Request(request.url, {
      method,
      headers,
      signal: request.signal,
      ...(body !== null && { body, duplex: 'half' }),
    } as RequestInit)
  }
}
