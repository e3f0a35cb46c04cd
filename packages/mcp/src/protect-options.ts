import type { Implementation, McpServer, McpServerOptions } from '@modelcontextprotocol/server'
import { z } from 'zod'
import type { CibaClientAuthentication } from './approval/ciba-client.js'
import type { AuditFailure, AuditHook } from './audit.js'
import type { Identity } from './identity.js'
import type { ToolRule } from './rules.js'
import type { StateStore, UserState } from './state.js'
import type { AccessTokenVerifier, Clock } from './verify/types.js'

/**
 * Where and how tool calls that need the person's approval ask for it: the MCP server is a
 * confidential CIBA client of Deputy (registered with the grant type
 * `urn:openid:params:grant-type:ciba`), authenticated by `clientSecret` (client_secret_basic) or
 * `privateKey` (private_key_jwt).
 */
export type ToolApprovalOptions = {
  /** Deputy's issuer; its metadata names the backchannel authentication and token endpoints. */
  issuer: string
  /** The MCP server's CIBA client at Deputy. */
  clientId: string
  /**
   * How long a call waits for the person's decision, sending progress notifications, before it
   * answers that the approval is pending; default 30 seconds, 0 answers at once.
   */
  waitSeconds?: number
  /** How long the person has to decide (CIBA `requested_expiry`, capped by Deputy); default Deputy's. */
  expirySeconds?: number
  /** Scopes asked for beside `openid`, if the approval's token should carry any. */
  scopes?: string[]
} & CibaClientAuthentication

/**
 * How tools reach the person's connected accounts (`ctx.connections.token('github')`): the MCP
 * server is a confidential client of Deputy registered with the grant type
 * `urn:ietf:params:oauth:grant-type:token-exchange` and this server's resource, and allowed by the
 * operator for each provider (`deputy providers allow-client`). It may be the same client as
 * `approvals`.
 */
export type ToolConnectionsOptions = {
  /** Deputy's issuer; its metadata names the token endpoint. */
  issuer: string
  /** The MCP server's client at Deputy. */
  clientId: string
  /** How many upstream tokens are kept in memory at most; default 1000. */
  maxCachedTokens?: number
} & CibaClientAuthentication

/** Options of {@link protectMcpServer}. */
export interface ProtectMcpServerOptions {
  /** This MCP server's canonical URL, e.g. `https://shop.example/mcp`: the `aud` of its tokens. */
  resource: string
  /** Issuers of the authorization servers clients should use (RFC 9728 `authorization_servers`). */
  authorizationServers: string[]
  /** Scopes to publish in the metadata; default: every scope a tool rule names. */
  scopesSupported?: string[]
  /** Scopes named in the 401 challenge, what a client asks for first; default `scopesSupported`. */
  challengeScopes?: string[]
  /** Checks access tokens: {@link jwtVerifier}, {@link introspectionVerifier} or your own. */
  verifier: AccessTokenVerifier
  /** Name and version the MCP server reports. */
  server: Implementation
  /** Passed to every `McpServer` the kit creates (capabilities, instructions, …). */
  serverOptions?: McpServerOptions
  /** Per-user durable state; handlers and policies get the caller's slice of it. */
  state?: StateStore
  /**
   * Receives every tool call: who, through which agent, which tool, decision and outcome. The
   * decision is recorded before the handler runs, the outcome after.
   */
  audit?: AuditHook
  /**
   * When the hook cannot record a call's decision: `refuse` (default) answers a tool error and
   * the handler does not run; `continue` tells `onError` and runs it anyway.
   */
  auditFailure?: AuditFailure
  /**
   * Asks the person (through Deputy's CIBA endpoint) before a call whose rule needs approval: a
   * Cedar `needs_approval`, or the rule's `approval`. Needs `state`, where pending requests are
   * kept. Without it, such calls are refused.
   */
  approvals?: ToolApprovalOptions
  /**
   * The person's connected accounts through Deputy's token vault: tools call
   * `ctx.connections.token(provider, { scope })`; a person who must connect first is handed the
   * connect link. Without it, `token()` rejects.
   */
  connections?: ToolConnectionsOptions
  /** Leave tools out of `tools/list` when the caller's roles or permissions rule them out. */
  hideForbiddenTools?: boolean
  /** RFC 9728 `resource_name`. */
  resourceName?: string
  /** RFC 9728 `resource_documentation`. */
  resourceDocumentation?: string
  /** Host header values accepted on the MCP endpoint (DNS rebinding guard); default the resource's host. */
  allowedHosts?: string[]
  /** Origin hostnames accepted on the MCP endpoint; default: the SDK's (localhost-only for local hosts). */
  allowedOrigins?: string[]
  /** How 2025-era clients are served: `stateless` (default, the SDK's fallback) or `reject`. */
  legacy?: 'stateless' | 'reject'
  /** Registers resources and prompts on each per-request `McpServer` with the plain SDK API. */
  setup?: (server: McpServer, context: { identity: Identity; state: UserState }) => void
  /** Unexpected errors: an unreachable issuer, a throwing policy or audit hook. */
  onError?: (error: Error) => void
  clock?: Clock
}

// RFC 6749 §3.3 scope-token.
const scopeToken = z
  .string()
  .regex(/^[\u0021\u0023-\u005B\u005D-\u007E]+$/, 'not an OAuth scope token')
  .refine((scope) => scope !== 'offline_access', {
    // MCP authorization "Refresh Tokens": offline_access belongs to the client and the AS, not to
    // the resource's metadata or challenges.
    message: 'offline_access is not a resource scope',
  })

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

// RFC 9728 §2 and RFC 8707 §2: an https URL without fragment; plain http only on loopback for
// development and tests.
const resourceUrl = z.url().refine(
  (value) => {
    const url = new URL(value)
    return (
      url.hash === '' &&
      (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)))
    )
  },
  { message: 'must be an https URL (http only on loopback) without a fragment' },
)

const privateKeySchema = z
  .object({
    key: z.custom<CryptoKey>(
      (value) => typeof CryptoKey !== 'undefined' && value instanceof CryptoKey,
      'must be a CryptoKey',
    ),
    kid: z.string().min(1).optional(),
  })
  .strict()

const optionsSchema = z
  .object({
    resource: resourceUrl,
    authorizationServers: z.array(resourceUrl).min(1),
    scopesSupported: z.array(scopeToken).optional(),
    challengeScopes: z.array(scopeToken).optional(),
    verifier: z.custom<AccessTokenVerifier>(
      (value) => typeof value === 'function',
      'must be a function',
    ),
    server: z.object({ name: z.string().min(1), version: z.string().min(1) }).loose(),
    serverOptions: z.record(z.string(), z.unknown()).optional(),
    state: z
      .custom<StateStore>(
        (value) =>
          typeof value === 'object' &&
          value !== null &&
          typeof (value as StateStore).read === 'function' &&
          typeof (value as StateStore).update === 'function',
        'must have read() and update()',
      )
      .optional(),
    audit: z
      .custom<AuditHook>((value) => typeof value === 'function', 'must be a function')
      .optional(),
    auditFailure: z.enum(['refuse', 'continue']).optional(),
    approvals: z
      .object({
        issuer: resourceUrl,
        clientId: z.string().min(1),
        clientSecret: z.string().min(1).optional(),
        privateKey: privateKeySchema.optional(),
        waitSeconds: z.number().int().min(0).max(3600).optional(),
        expirySeconds: z.number().int().min(1).optional(),
        scopes: z.array(scopeToken).optional(),
      })
      .strict()
      .refine((value) => (value.clientSecret === undefined) !== (value.privateKey === undefined), {
        message: 'give exactly one of clientSecret and privateKey',
      })
      .optional(),
    connections: z
      .object({
        issuer: resourceUrl,
        clientId: z.string().min(1),
        clientSecret: z.string().min(1).optional(),
        privateKey: privateKeySchema.optional(),
        maxCachedTokens: z.number().int().min(1).max(1_000_000).optional(),
      })
      .strict()
      .refine((value) => (value.clientSecret === undefined) !== (value.privateKey === undefined), {
        message: 'give exactly one of clientSecret and privateKey',
      })
      .optional(),
    hideForbiddenTools: z.boolean().optional(),
    resourceName: z.string().min(1).optional(),
    resourceDocumentation: z.url().optional(),
    allowedHosts: z.array(z.string().min(1)).optional(),
    allowedOrigins: z.array(z.string().min(1)).optional(),
    legacy: z.enum(['stateless', 'reject']).optional(),
    setup: z.custom<() => void>((value) => typeof value === 'function').optional(),
    onError: z.custom<() => void>((value) => typeof value === 'function').optional(),
    clock: z.custom<Clock>((value) => typeof value === 'function').optional(),
  })
  .strict()
  .refine((value) => value.approvals === undefined || value.state !== undefined, {
    message: 'approvals: needs `state`, where pending approvals are kept',
    path: ['approvals'],
  })

const ruleSchema = z
  .object({
    scopes: z.array(scopeToken).optional(),
    roles: z.array(z.string().min(1)).optional(),
    permissions: z.array(z.string().min(1)).optional(),
    policy: z.custom<() => void>((value) => typeof value === 'function').optional(),
    approval: z
      .object({
        when: z.custom<() => void>((value) => typeof value === 'function').optional(),
        bindingMessage: z
          .union([
            z.string().min(1).max(100),
            z.custom<() => string>((value) => typeof value === 'function'),
          ])
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()

/** Throws a `TypeError` naming every invalid field of the options (checked once, at start). */
export function checkProtectOptions(options: ProtectMcpServerOptions): void {
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success) throw new TypeError(`protectMcpServer: ${z.prettifyError(parsed.error)}`)
}

/**
 * Throws a `TypeError` when a tool's rule is malformed, names a scope the metadata would not
 * publish (`scopesSupported` as given; undefined: every rule's scopes are), or asks for approvals
 * the options cannot get.
 */
export function checkToolRule(
  name: string,
  rule: ToolRule,
  options: Pick<ProtectMcpServerOptions, 'scopesSupported' | 'approvals'>,
): void {
  const checked = ruleSchema.safeParse(rule)
  if (!checked.success) throw new TypeError(`tool ${name}: ${z.prettifyError(checked.error)}`)
  if (rule.approval !== undefined && options.approvals === undefined) {
    // Told now rather than refusing every call later.
    throw new TypeError(`tool ${name}: an approval rule needs the approvals option`)
  }
  const scopesSupported = options.scopesSupported
  const outside = (rule.scopes ?? []).filter(
    (scope) => !(scopesSupported ?? [scope]).includes(scope),
  )
  if (outside.length > 0) {
    // The metadata must name every scope a tool can challenge for, or clients cannot ask for it.
    throw new TypeError(`tool ${name}: scopes not in scopesSupported: ${outside.join(' ')}`)
  }
}
