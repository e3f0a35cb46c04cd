// The stdio upstream's limits and defaults, apart from upstream-stdio.ts so `deputy gateway --help`
// can name them without loading the MCP SDK the upstream runs on.

/** Default cap on children in total. */
export const DEFAULT_MAX_CHILDREN = 64

/** Default cap on the children of one person. */
export const DEFAULT_MAX_CHILDREN_PER_PERSON = 4

/** Default idle time after which a child is stopped: 10 minutes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000

/**
 * The variables a child inherits from the gateway. The SDK's stdio transport adds its own safe
 * set (`HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER`; Windows' system variables); nothing
 * else of the gateway's environment, where Deputy's secrets live, reaches the child.
 */
export const INHERITED_ENVIRONMENT = ['PATH', 'HOME', 'LANG'] as const

/** The longest idle timeout: a Node timer longer than 2^31 - 1 ms fires at once. */
export const MAX_IDLE_TIMEOUT_MS = 2 ** 31 - 1
