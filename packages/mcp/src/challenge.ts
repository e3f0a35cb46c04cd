/** Parameters of a `WWW-Authenticate: Bearer` challenge. */
export interface BearerChallengeParams {
  /** RFC 6750 §3.1 error code; leave out when the request carried no credentials. */
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope'
  errorDescription?: string
  /** Scopes the client should ask for (RFC 6750 §3, MCP "Scope Selection Strategy"). */
  scope?: readonly string[]
  /** RFC 9728 §5.1: where the Protected Resource Metadata lives. */
  resourceMetadata?: string
  realm?: string
}

// RFC 9110 §5.6.4 quoted-string: backslash-escape `"` and `\`; RFC 6750 §3 also limits the values to
// printable ASCII, so anything else becomes a space rather than a malformed header.
function quoted(value: string): string {
  const printable = value.replaceAll(/[^\u0020-\u007E]/g, ' ')
  return `"${printable.replaceAll(/["\\]/g, (char) => `\\${char}`)}"`
}

/**
 * Builds the value of a `WWW-Authenticate: Bearer` header. Without `error` it is the bare
 * challenge RFC 6750 §3.1 asks for when no credentials were sent.
 */
export function bearerChallenge(params: BearerChallengeParams): string {
  const parts: string[] = []
  if (params.realm !== undefined) parts.push(`realm=${quoted(params.realm)}`)
  if (params.error !== undefined) parts.push(`error=${quoted(params.error)}`)
  if (params.errorDescription !== undefined) {
    parts.push(`error_description=${quoted(params.errorDescription)}`)
  }
  if (params.resourceMetadata !== undefined) {
    parts.push(`resource_metadata=${quoted(params.resourceMetadata)}`)
  }
  if (params.scope !== undefined && params.scope.length > 0) {
    parts.push(`scope=${quoted(params.scope.join(' '))}`)
  }
  return parts.length === 0 ? 'Bearer' : `Bearer ${parts.join(', ')}`
}
