import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { answersItself, isDeputyError } from '../lib/errors.js'
import { isRateLimited } from '../lib/rate-limit.js'
import type { AppEnv } from './env.js'

/**
 * The one place errors become responses. A DeputyError's message is written to be shown; anything
 * else is unexpected: logged with the request id and answered with a generic `server_error`, so
 * no stack trace or internal detail reaches the caller.
 */
export function errorResponse(err: unknown, c: Context<AppEnv>): Response {
  const requestId = c.get('requestId')
  // A protocol error (OAuth's, say) answers in its protocol's own format.
  if (answersItself(err)) {
    if (err.status >= 500) c.get('logger')?.error({ err, requestId }, 'protocol server error')
    return err.toResponse()
  }
  if (err instanceof HTTPException) {
    const status = err.status
    return c.json(
      {
        error: status === 413 ? 'request_too_large' : 'invalid_request',
        message: err.message || 'request refused',
        request_id: requestId,
      },
      status,
      noStore,
    )
  }
  if (isDeputyError(err) && err.status < 500) {
    return c.json(
      {
        error: err.code,
        message: err.message,
        ...(err.problems !== undefined && { problems: err.problems }),
        request_id: requestId,
      },
      err.status as 400,
      isRateLimited(err) ? { ...noStore, 'Retry-After': String(err.retryAfterSeconds) } : noStore,
    )
  }
  c.get('logger')?.error({ err, requestId }, 'unexpected error')
  return c.json(
    {
      error: 'server_error',
      message: 'Something went wrong on our side. The request id says where.',
      request_id: requestId,
    },
    500,
    noStore,
  )
}

const noStore = { 'Cache-Control': 'no-store' }
