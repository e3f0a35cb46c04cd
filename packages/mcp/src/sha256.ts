type NodeCrypto = {
  /** One-shot hash (Node 20.12 and later): no Hash object per digest. */
  hash?(algorithm: 'sha256', data: string, outputEncoding: 'base64url'): string
  createHash(algorithm: 'sha256'): {
    update(data: string, encoding: 'utf8'): { digest(encoding: 'base64url'): string }
  }
}

// Node's synchronous hash when the runtime has one (a few µs, no thread-pool round trip);
// WebCrypto's everywhere else. `process.getBuiltinModule` exists from Node 20.16 on.
const nodeCrypto = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined
const nodeHash = nodeCrypto?.hash

/** SHA-256 of a string's UTF-8 bytes, base64url without padding. */
export async function sha256Base64url(text: string): Promise<string> {
  if (nodeHash !== undefined) return nodeHash('sha256', text, 'base64url')
  if (nodeCrypto !== undefined)
    return nodeCrypto.createHash('sha256').update(text, 'utf8').digest('base64url')
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)),
  )
  return btoa(String.fromCharCode(...digest))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '')
}
