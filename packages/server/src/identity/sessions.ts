import type { DeputyDeps } from '../deputy.js'
import type { User } from './users.js'

/** A signed-in browser session. */
export interface CurrentSession {
  user: User
  /** The session's CSRF token, to compare with a form field or `X-CSRF-Token` header. */
  csrfToken: string
}

// PLACEHOLDER until the sessions work lands (issue 2 §5): reads the session cookie of `request`.
export async function readSession(
  _deps: DeputyDeps,
  _request: Request,
): Promise<CurrentSession | null> {
  return null
}
