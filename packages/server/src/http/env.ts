import type { Logger } from 'pino'

/** Per-request values the edge middleware sets for handlers. */
export interface AppEnv {
  Variables: {
    requestId: string
    logger: Logger
  }
}
