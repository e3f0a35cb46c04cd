/** RFC 9728 §2 Protected Resource Metadata, as this kit publishes it. */
export interface ProtectedResourceMetadata {
  resource: string
  authorization_servers: string[]
  scopes_supported?: string[]
  bearer_methods_supported: ['header']
  resource_name?: string
  resource_documentation?: string
}

/** RFC 9728 §3.1: the well-known path for a resource, with the resource's path appended. */
export function protectedResourceMetadataPath(resource: URL): string {
  const path = resource.pathname.replace(/\/+$/, '')
  return `/.well-known/oauth-protected-resource${path}`
}

/** The URL of the path-aware metadata document, as advertised in `resource_metadata`. */
export function protectedResourceMetadataUrl(resource: URL): string {
  return new URL(protectedResourceMetadataPath(resource), resource.origin).href
}

// Discovery documents are public and read by browser-based clients from any origin.
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
} as const

/** Answers a request for the metadata document: JSON with CORS, 204 preflight, 405 otherwise. */
export function metadataResponse(request: Request, metadata: ProtectedResourceMetadata): Response {
  if (request.method === 'OPTIONS') {
    const requested = request.headers.get('access-control-request-headers')
    return new Response(null, {
      status: 204,
      headers: {
        ...CORS,
        ...(requested !== null && { 'access-control-allow-headers': requested }),
        'access-control-max-age': '86400',
      },
    })
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return new Response(null, {
      status: 405,
      headers: { ...CORS, allow: CORS['access-control-allow-methods'] },
    })
  }
  const body = request.method === 'HEAD' ? null : JSON.stringify(metadata)
  return new Response(body, {
    headers: {
      ...CORS,
      'content-type': 'application/json',
      'cache-control': 'public, max-age=300',
    },
  })
}
