/**
 * Internal error codes. Branch on `code`, never on `instanceof` across packages.
 * Messages are written for the person who made the mistake: one line, naming the problem,
 * never a secret.
 */
export type DeputyErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_UNREADABLE'
  | 'ERR_MASTER_KEY_MISSING'
  | 'ERR_MASTER_KEY_INVALID'
  | 'ERR_DECRYPT_FAILED'
  | 'ERR_DATABASE'
  | 'ERR_INVALID_INPUT'
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_FORBIDDEN'
  | 'ERR_RATE_LIMITED'
  | 'ERR_AUDIT_CHAIN_BROKEN'
  | 'ERR_POLICY_INVALID'

const HTTP_STATUS: Record<DeputyErrorCode, number> = {
  ERR_CONFIG_INVALID: 500,
  ERR_CONFIG_UNREADABLE: 500,
  ERR_MASTER_KEY_MISSING: 500,
  ERR_MASTER_KEY_INVALID: 500,
  ERR_DECRYPT_FAILED: 500,
  ERR_DATABASE: 500,
  ERR_INVALID_INPUT: 400,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_RATE_LIMITED: 429,
  ERR_AUDIT_CHAIN_BROKEN: 500,
  ERR_POLICY_INVALID: 400,
}

/**
 * An error that carries its own wire answer (a protocol's error format, such as OAuth's JSON), so
 * the HTTP edge can answer it without knowing the protocol.
 */
export interface AnswersItself {
  readonly status: number
  toResponse(): Response
}

/** True for an error that carries its own wire answer. */
export function answersItself(err: unknown): err is Error & AnswersItself {
  return (
    err instanceof Error &&
    typeof (err as Partial<AnswersItself>).toResponse === 'function' &&
    typeof (err as Partial<AnswersItself>).status === 'number'
  )
}

/** The one internal error type: a stable code, a message safe to show, optional details for logs. */
export class DeputyError extends Error {
  readonly code: DeputyErrorCode
  readonly status: number
  /** Private detail for logs and the audit chain; never sent to a caller. */
  readonly detail?: unknown
  /**
   * Public, structured detail the caller needs to fix the request (e.g. a policy's line, column
   * and message); sent as `problems` beside `message`.
   */
  readonly problems?: readonly unknown[]

  constructor(
    code: DeputyErrorCode,
    message: string,
    options?: { detail?: unknown; cause?: unknown; problems?: readonly unknown[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'DeputyError'
    this.code = code
    this.status = HTTP_STATUS[code]
    this.detail = options?.detail
    if (options?.problems !== undefined) this.problems = options.problems
  }
}

/** True for a DeputyError, also one from another copy of this module. */
export function isDeputyError(err: unknown): err is DeputyError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'DeputyError' &&
    typeof (err as { code?: unknown }).code === 'string'
  )
}
