import type { AuditHook, ToolCallEvent } from '@deputy/mcp'
import { type ServerType, serve } from '@hono/node-server'
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { issuerJwtVerifier } from '../../src/gateway/authorization-server.js'
import { createGateway, type Gateway } from '../../src/gateway/gateway.js'
import { type GatewayRules, parseRules } from '../../src/gateway/rules.js'
import type { Upstream } from '../../src/gateway/upstream.js'

/** A listening server and its base URL. */
export async function listenOn(
  fetch: (request: Request) => Response | Promise<Response>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

/**
 * A stand-in authorization server: RFC 8414 metadata and a JWKS on 127.0.0.1, and RFC 9068 access
 * tokens signed with its key. The gateway works with any issuer, so the tests need no Deputy.
 */
export async function startIssuer(): Promise<{
  issuer: string
  token(claims: JWTPayload & { aud: string }, options?: { foreignKey?: boolean }): Promise<string>
  close(): Promise<void>
}> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const foreign = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  let issuer = ''
  const server = await listenOn((request) => {
    const path = new URL(request.url).pathname
    if (path === '/.well-known/oauth-authorization-server') {
      return Response.json({
        issuer,
        jwks_uri: `${issuer}/jwks`,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
      })
    }
    if (path === '/jwks') return Response.json({ keys: [jwk] })
    return new Response(null, { status: 404 })
  })
  issuer = server.url
  return {
    issuer,
    async token(claims, options = {}) {
      return new SignJWT({ client_id: 'agent-1', sub: 'alice', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(crypto.randomUUID())
        .sign(options.foreignKey ? foreign.privateKey : privateKey)
    },
    close: () => server.close(),
  }
}

/**
 * A gateway on 127.0.0.1 in front of `upstream`, its audit events collected (after `audit`, when
 * given, accepted them: a hook that throws records nothing).
 */
export async function startGateway(options: {
  issuer: string
  upstream: Upstream
  rules?: unknown
  audit?: AuditHook
  auditFailure?: 'refuse' | 'continue'
}): Promise<{
  resource: string
  gateway: Gateway
  events: ToolCallEvent[]
  errors: Error[]
  close(): Promise<void>
}> {
  let gateway: Gateway | undefined
  const server = await listenOn(
    (request) => gateway?.fetch(request) ?? new Response(null, { status: 503 }),
  )
  const resource = `${server.url}/mcp`
  const events: ToolCallEvent[] = []
  const errors: Error[] = []
  const rules: GatewayRules | undefined =
    options.rules === undefined ? undefined : parseRules(options.rules)
  gateway = createGateway({
    resource,
    authorizationServers: [options.issuer],
    verifier: issuerJwtVerifier({ issuer: options.issuer, audience: resource }),
    upstream: options.upstream,
    ...(rules !== undefined && { rules }),
    audit: async (event) => {
      await options.audit?.(event)
      events.push(event)
    },
    ...(options.auditFailure !== undefined && { auditFailure: options.auditFailure }),
    onError: (error) => errors.push(error),
  })
  const running = gateway
  return {
    resource,
    gateway: running,
    events,
    errors,
    async close() {
      await running.close()
      await server.close()
    },
  }
}
