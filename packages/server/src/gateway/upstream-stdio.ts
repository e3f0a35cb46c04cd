import { randomUUID } from 'node:crypto'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import {
  isInitializeRequest,
  type JSONRPCMessage,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server'
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CHILDREN,
  DEFAULT_MAX_CHILDREN_PER_PERSON,
  INHERITED_ENVIRONMENT,
  MAX_IDLE_TIMEOUT_MS,
} from './stdio-limits.js'
import {
  INTERNAL_ERROR,
  INVALID_REQUEST,
  rpcErrorResponse,
  SERVER_ERROR,
  SESSION_NOT_FOUND,
  type Upstream,
} from './upstream.js'

export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CHILDREN,
  DEFAULT_MAX_CHILDREN_PER_PERSON,
  INHERITED_ENVIRONMENT,
  MAX_IDLE_TIMEOUT_MS,
}

/** Options of {@link stdioUpstream}. */
export interface StdioUpstreamOptions {
  /** The program to run, e.g. `node`. */
  command: string
  args?: string[]
  /**
   * Variables the child gets on top of {@link INHERITED_ENVIRONMENT}; never the rest of the
   * gateway's environment, and never a `DEPUTY_*` name.
   */
  env?: Record<string, string>
  cwd?: string
  /** Most children running at once, for everyone; default {@link DEFAULT_MAX_CHILDREN}. */
  maxChildren?: number
  /** Most children one person (`sub`) holds at once; default {@link DEFAULT_MAX_CHILDREN_PER_PERSON}. */
  maxChildrenPerPerson?: number
  /** A child with no POST under way and no message for this long is stopped; default {@link DEFAULT_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number
  onError?: (error: Error) => void
}

interface Session {
  readonly http: WebStandardStreamableHTTPServerTransport
  readonly child: StdioClientTransport
  /** The person whose session this is: the cap per person counts these. */
  readonly sub: string
  /** Client requests the child has not answered yet, oldest first. */
  readonly open: unknown[]
  /** `progressToken` → id of the request that carries it. */
  readonly progress: Map<unknown, unknown>
  /** POSTs whose answer is still under way: they keep the session from counting as idle. */
  busy: number
  /** Fires when the session has been idle for the timeout. */
  idle: ReturnType<typeof setTimeout> | undefined
  closed: boolean
}

/**
 * Splits a command line into program and arguments the way a POSIX shell splits words (single and
 * double quotes, backslash escapes), without running a shell: no expansion, no pipes.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quote: '"' | "'" | undefined
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string
    if (quote === "'") {
      if (char === "'") quote = undefined
      else word += char
    } else if (quote === '"') {
      if (char === '"') quote = undefined
      else if (char === '\\' && /["\\$`]/.test(line[i + 1] ?? '')) word += line[++i]
      else word += char
    } else if (char === "'" || char === '"') {
      quote = char
      inWord = true
    } else if (char === '\\' && i + 1 < line.length) {
      word += line[++i]
      inWord = true
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += char
      inWord = true
    }
  }
  if (quote !== undefined) throw new TypeError(`unterminated ${quote} quote in command`)
  if (inWord) words.push(word)
  return words
}

function requestId(message: JSONRPCMessage): unknown {
  const candidate = message as { id?: unknown; method?: unknown }
  return candidate.method !== undefined && candidate.id !== undefined ? candidate.id : undefined
}

function positive(name: string, value: number | undefined, fallback: number, max = Infinity) {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new TypeError(
      `stdioUpstream: ${name} must be a positive integer up to ${max}, not ${value}`,
    )
  }
  return value
}

/**
 * The environment a child starts with: {@link INHERITED_ENVIRONMENT} from `parent`, then
 * `extra`. A `DEPUTY_*` name in `extra` is refused: Deputy's settings (the master key, the
 * database URL) are not the upstream's.
 */
export function childEnvironment(
  parent: Readonly<Record<string, string | undefined>>,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of INHERITED_ENVIRONMENT) {
    const value = parent[name]
    if (value !== undefined) env[name] = value
  }
  for (const [name, value] of Object.entries(extra)) {
    if (name.toUpperCase().startsWith('DEPUTY_')) {
      throw new TypeError(`${name} is one of Deputy's own settings; it is never passed upstream`)
    }
    env[name] = value
  }
  return env
}

/** A copy of `response` whose body calls `done` once, when it ends, fails or is cancelled. */
function onceDone(response: Response, done: () => void): Response {
  if (response.body === null) {
    done()
    return response
  }
  let finished = false
  const finish = () => {
    if (finished) return
    finished = true
    done()
  }
  const reader = response.body.getReader()
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: ended, value } = await reader.read()
        if (ended) {
          finish()
          controller.close()
        } else controller.enqueue(value)
      } catch (error) {
        finish()
        controller.error(error)
      }
    },
    async cancel(reason) {
      finish()
      await reader.cancel(reason)
    },
  })
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  })
}

/**
 * An MCP server run as a child process speaking stdio. Each MCP session a client opens gets its own
 * child (a stdio server serves exactly one client); the official SDK's Streamable HTTP server
 * transport faces the client and its stdio client transport faces the child, and JSON-RPC
 * messages cross between them unchanged, both ways: requests and responses, notifications,
 * progress, and the child's own requests (elicitation, sampling, roots) with their answers. A
 * message the child sends while a client request is open goes on that request's stream, so a
 * client that holds no standalone GET stream still sees it; progress follows its `progressToken`.
 *
 * Children are bounded: at most `maxChildren` at once and `maxChildrenPerPerson` per `sub` (a new
 * session over either cap is refused and nothing is spawned), a child with no POST under way and
 * no message either way for `idleTimeoutMs` is stopped (its session then reads as not found, like
 * one the client ended; an open GET stream alone does not keep it), and a child sees only a
 * minimal environment.
 */
export function stdioUpstream(options: StdioUpstreamOptions): Upstream {
  const onError = options.onError ?? (() => {})
  const maxChildren = positive('maxChildren', options.maxChildren, DEFAULT_MAX_CHILDREN)
  const perPerson = positive(
    'maxChildrenPerPerson',
    options.maxChildrenPerPerson,
    DEFAULT_MAX_CHILDREN_PER_PERSON,
  )
  const idleTimeoutMs = positive(
    'idleTimeoutMs',
    options.idleTimeoutMs,
    DEFAULT_IDLE_TIMEOUT_MS,
    MAX_IDLE_TIMEOUT_MS,
  )
  // Read once: the child's environment is settled when the gateway starts.
  const env = childEnvironment(process.env, options.env)
  /** Every child, from spawn to stop: what the caps count. */
  const live = new Set<Session>()
  /** Children by `Mcp-Session-Id`, once their session is initialized. */
  const sessions = new Map<string, Session>()

  const end = async (session: Session) => {
    if (session.closed) return
    session.closed = true
    clearTimeout(session.idle)
    live.delete(session)
    if (session.http.sessionId !== undefined) sessions.delete(session.http.sessionId)
    await Promise.allSettled([session.http.close(), session.child.close()])
  }

  // Activity pushes the deadline back; an exchange under way holds it off until it ends.
  const touch = (session: Session) => {
    if (!session.closed) session.idle?.refresh()
  }
  const idle = (session: Session) => {
    if (session.busy > 0) touch(session)
    else void end(session)
  }

  async function serve(session: Session, request: Request, parsedBody: unknown): Promise<Response> {
    touch(session)
    // A POST is work under way until its answer has streamed out (a long tool call included); a
    // standalone GET stream only listens, and does not keep an unused child alive.
    if (request.method !== 'POST') return session.http.handleRequest(request, { parsedBody })
    session.busy += 1
    let response: Response
    try {
      response = await session.http.handleRequest(request, { parsedBody })
    } catch (error) {
      session.busy -= 1
      throw error
    }
    return onceDone(response, () => {
      session.busy -= 1
      touch(session)
    })
  }

  function relatedRequest(session: Session, message: JSONRPCMessage): unknown {
    const candidate = message as { id?: unknown; method?: unknown; params?: unknown }
    if (candidate.method === undefined) return candidate.id
    if (candidate.method === 'notifications/progress') {
      const token = (candidate.params as { progressToken?: unknown } | undefined)?.progressToken
      const id = session.progress.get(token)
      if (id !== undefined) return id
    }
    return session.open.at(-1)
  }

  /** A session and its child, counted from here on; the child is not started yet. */
  function create(sub: string): Session {
    const child = new StdioClientTransport({
      command: options.command,
      args: options.args ?? [],
      env,
      ...(options.cwd !== undefined && { cwd: options.cwd }),
      stderr: 'inherit',
    })
    const session: Session = {
      // The client-facing side: sessions, SSE streams, resumption headers, per the SDK.
      http: new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, session)
        },
      }),
      child,
      sub,
      open: [],
      progress: new Map(),
      busy: 0,
      idle: undefined,
      closed: false,
    }
    session.idle = setTimeout(() => idle(session), idleTimeoutMs)
    session.idle.unref?.()
    live.add(session)
    session.http.onmessage = (message) => {
      touch(session)
      const id = requestId(message)
      if (id !== undefined) {
        session.open.push(id)
        const token = (message as { params?: { _meta?: { progressToken?: unknown } } }).params
          ?._meta?.progressToken
        if (token !== undefined) session.progress.set(token, id)
      }
      const cancelled = message as { method?: unknown; params?: { requestId?: unknown } }
      if (cancelled.method === 'notifications/cancelled')
        forget(session, cancelled.params?.requestId)
      child.send(message).catch((error: Error) => onError(error))
    }
    session.http.onclose = () => void end(session)
    session.http.onerror = (error) => onError(error)
    child.onmessage = (message) => {
      touch(session)
      const related = relatedRequest(session, message)
      const candidate = message as { method?: unknown; id?: unknown }
      if (candidate.method === undefined) forget(session, candidate.id)
      session.http
        .send(message, related === undefined ? undefined : { relatedRequestId: related as never })
        .catch((error: Error) => onError(error))
    }
    child.onclose = () => void end(session)
    child.onerror = (error) => onError(error)
    return session
  }

  function forget(session: Session, id: unknown): void {
    const at = session.open.indexOf(id)
    if (at >= 0) session.open.splice(at, 1)
    for (const [token, request] of session.progress) {
      if (request === id) session.progress.delete(token)
    }
  }

  return {
    async handle(request, body, caller) {
      // What the SDK's transport would refuse anyway (a CORS preflight, which carries no token,
      // included) is answered here, so it neither reaches a child nor keeps one awake.
      if (!['GET', 'POST', 'DELETE'].includes(request.method)) {
        return rpcErrorResponse(405, SERVER_ERROR, 'Method not allowed', {
          headers: { allow: 'GET, POST, DELETE' },
        })
      }
      const sessionId = request.headers.get('mcp-session-id')
      if (sessionId !== null) {
        const session = sessions.get(sessionId)
        // The SDK's answer for an unknown (or ended, or reaped) session: the client starts anew.
        if (session === undefined)
          return rpcErrorResponse(404, SESSION_NOT_FOUND, 'Session not found')
        return serve(session, request, body)
      }
      const messages = Array.isArray(body) ? body : [body]
      if (request.method !== 'POST' || !messages.some((message) => isInitializeRequest(message))) {
        return rpcErrorResponse(400, INVALID_REQUEST, 'Bad Request: No valid session ID provided')
      }
      // Checked and counted in one turn of the event loop, so concurrent opens cannot overshoot.
      if (live.size >= maxChildren) {
        return rpcErrorResponse(
          503,
          SERVER_ERROR,
          `The gateway already runs its limit of ${maxChildren} upstream processes; try again later`,
        )
      }
      let mine = 0
      for (const session of live) if (session.sub === caller.sub) mine += 1
      if (mine >= perPerson) {
        return rpcErrorResponse(
          429,
          SERVER_ERROR,
          `You already hold ${perPerson} MCP sessions, the most one person may: end one (DELETE) or let an idle one close`,
        )
      }
      const session = create(caller.sub)
      try {
        await session.child.start()
      } catch (error) {
        await end(session)
        onError(new Error(`upstream command could not start: ${(error as Error).message}`))
        return rpcErrorResponse(502, INTERNAL_ERROR, 'The upstream MCP server could not be started')
      }
      const response = await serve(session, request, body)
      // An initialize the transport refused leaves a child nobody can reach.
      if (session.http.sessionId === undefined) await end(session)
      return response
    },
    async close() {
      await Promise.allSettled([...live].map(end))
    },
  }
}
