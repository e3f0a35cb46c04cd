import { DeputyError } from '../../lib/errors.js'

// The flags of `deputy gateway` and their checks, shared by the command's declaration
// (gateway.ts) and its run (gateway-run.ts, loaded only when the command runs).

/** The flags of `deputy gateway`. */
export interface GatewayCommandOptions {
  upstream?: string
  upstreamCommand?: string
  resource?: string
  issuer?: string
  jwksUri?: string
  rules?: string
  port?: string
  host?: string
  auditFailure?: string
  upstreamEnv?: string[]
  maxChildren?: string
  maxChildrenPerPerson?: string
  idleTimeout?: string
  approvalsClientId?: string
  approvalWait?: string
}

/** Where the gateway's CIBA client secret is read from: never a flag, which `ps` would show. */
export const CIBA_SECRET_VARIABLE = 'DEPUTY_GATEWAY_CIBA_CLIENT_SECRET'

export const DEFAULT_PORT = 8090

export function invalid(message: string): DeputyError {
  return new DeputyError('ERR_INVALID_INPUT', message)
}

export function httpUrl(flag: string, value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(`${flag} must be a URL, not "${value}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${flag} must be an http or https URL, not "${value}"`)
  }
  return url
}

export function positiveInteger(
  flag: string,
  value: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const number = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw invalid(`${flag} must be a positive whole number, not "${value}"`)
  }
  if (number > max) throw invalid(`${flag} must be at most ${max}, not ${value}`)
  return number
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * The variables `--upstream-env` gives the child: `NAME=value` as written, `NAME` copied from the
 * gateway's environment. Deputy's own settings (`DEPUTY_*`) are never passed on.
 */
export function upstreamEnvironment(
  specs: readonly string[],
  parent: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const spec of specs) {
    const at = spec.indexOf('=')
    const name = at < 0 ? spec : spec.slice(0, at)
    if (!ENV_NAME.test(name)) {
      throw invalid(`--upstream-env takes NAME or NAME=value, not "${spec}"`)
    }
    if (name.toUpperCase().startsWith('DEPUTY_')) {
      throw invalid(
        `--upstream-env ${name}: Deputy's own settings are never passed to the upstream`,
      )
    }
    const value = at < 0 ? parent[name] : spec.slice(at + 1)
    if (value === undefined) {
      throw invalid(`--upstream-env ${name}: ${name} is not set in the gateway's environment`)
    }
    env[name] = value
  }
  return env
}
