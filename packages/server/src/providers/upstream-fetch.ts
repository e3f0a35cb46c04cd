import type { CustomFetch, CustomFetchOptions } from 'openid-client'
import { SafeFetchError, safeFetch } from '../lib/safe-fetch.js'
import { ProviderError } from './types.js'

/** How requests to upstream providers are made: the SSRF-guarded fetch and its one loosening. */
export interface UpstreamFetchOptions {
  /** Development only (`dangerouslyAllowHttpLoopbackProviders`): providers on http://127.0.0.1. */
  allowHttpLoopback?: boolean
  /** Largest answer accepted (default 256 KiB: discovery documents and JWKS are a few KiB). */
  maxBytes?: number
  timeoutMs?: number
}

/** A request Deputy makes to a provider itself (GitHub's /user, Slack's users.identity …). */
export interface UpstreamRequest {
  method?: string
  headers?: Record<string, string>
  body?: string
}

/** Answers that never carry a body in the Fetch API (`new Response` refuses one). */
const NULL_BODY_STATUS = new Set([101, 204, 205, 304])

function bodyText(body: CustomFetchOptions['body']): string | undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return body
  if (body instanceof URLSearchParams) return body.toString()
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8')
  if (body instanceof ArrayBuffer) return Buffer.from(body).toString('utf8')
  // openid-client only streams bodies for features Deputy does not use.
  throw new ProviderError('invalid_request', 'a streamed request body is not supported')
}

/**
 * Fetches from a provider through lib/safe-fetch.ts, so every request to a provider (discovery,
 * token, userinfo, JWKS, revocation, user APIs) keeps the SSRF guarantees: public addresses only
 * after DNS resolution, https only, no redirects followed, a size cap and a deadline. Failures of
 * the transport are ProviderError 'unreachable' (transient for network trouble).
 */
export function createUpstreamFetch(options: UpstreamFetchOptions = {}) {
  async function request(url: string, init: UpstreamRequest = {}): Promise<Response> {
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(init.headers ?? {}))
      headers[name.toLowerCase()] = value
    const { accept, ...rest } = headers
    try {
      const answer = await safeFetch(url, {
        allowHttpLoopback: options.allowHttpLoopback === true,
        maxBytes: options.maxBytes ?? 256 * 1024,
        timeoutMs: options.timeoutMs ?? 10_000,
        accept: accept ?? 'application/json',
        request: { method: init.method ?? 'GET', headers: rest, body: init.body },
      })
      const responseHeaders = new Headers()
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined || name === 'set-cookie') continue
        responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value)
      }
      return new Response(NULL_BODY_STATUS.has(answer.status) ? null : answer.body, {
        status: answer.status,
        headers: responseHeaders,
      })
    } catch (err) {
      if (err instanceof SafeFetchError)
        throw new ProviderError(
          'unreachable',
          `provider request refused or failed: ${err.reason}`,
          {
            // Network trouble may pass; a refused address or scheme is the configuration's.
            transient: /^(fetch failed|no complete answer)/.test(err.reason),
            cause: err,
          },
        )
      throw err
    }
  }

  /** openid-client's `customFetch`: the same request, with its options. */
  const customFetch: CustomFetch = (url, init) =>
    request(url, { method: init.method, headers: init.headers, body: bodyText(init.body) })

  return { request, customFetch }
}

export type UpstreamFetch = ReturnType<typeof createUpstreamFetch>
