import type { Logger } from 'pino'

/** Per-request values the edge middleware sets for handlers. */
export interface AppEnv {
  Variables: {
    requestId: string
    /** The process logger; name the request with `requestId` in each line. */
    logger: Logger
    /** The security headers every response carries (see `securityHeaders`). */
    securityHeaders: Readonly<Record<string, string>>
    /**
     * The client's network address (see http/client-address.ts: the socket's peer, or the
     * `X-Forwarded-For` entry a trusted proxy vouches for); undefined when the host cannot tell.
     */
    clientAddress: string | undefined
  }
}
