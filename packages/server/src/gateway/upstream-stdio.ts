import { randomUUID } from 'node:crypto'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import {
  isInitializeRequest,
  type JSONRPCMessage,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server'
import { INTERNAL_ERROR, INVALID_REQUEST, rpcErrorResponse, type Upstream } from './upstream.js'

/** Options of {@link stdioUpstream}. */
export interface StdioUpstreamOptions {
  /** The program to run, e.g. `node`. */
  command: string
  args?: string[]
  /** The child's environment; default the gateway's own. */
  env?: Record<string, string>
  cwd?: string
  onError?: (error: Error) => void
}

interface Session {
  readonly http: WebStandardStreamableHTTPServerTransport
  readonly child: StdioClientTransport
  /** Client requests the child has not answered yet, oldest first. */
  readonly open: unknown[]
  /** `progressToken` → id of the request that carries it. */
  readonly progress: Map<unknown, unknown>
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

/**
 * An MCP server run as a child process speaking stdio. Each MCP session a client opens gets its own
 * child (a stdio server serves exactly one client); the official SDK's Streamable HTTP server
 * transport faces the client and its stdio client transport faces the child, and JSON-RPC
 * messages cross between them unchanged, both ways: requests and responses, notifications,
 * progress, and the child's own requests (elicitation, sampling, roots) with their answers. A
 * message the child sends while a client request is open goes on that request's stream, so a
 * client that holds no standalone GET stream still sees it; progress follows its `progressToken`.
 */
export function stdioUpstream(options: StdioUpstreamOptions): Upstream {
  const onError = options.onError ?? (() => {})
  const sessions = new Map<string, Session>()

  const end = async (session: Session) => {
    if (session.closed) return
    session.closed = true
    if (session.http.sessionId !== undefined) sessions.delete(session.http.sessionId)
    await Promise.allSettled([session.http.close(), session.child.close()])
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

  async function open(): Promise<Session> {
    const child = new StdioClientTransport({
      command: options.command,
      args: options.args ?? [],
      env:
        options.env ??
        Object.fromEntries(
          Object.entries(process.env).filter(
            (entry): entry is [string, string] => entry[1] !== undefined,
          ),
        ),
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
      open: [],
      progress: new Map(),
      closed: false,
    }
    session.http.onmessage = (message) => {
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
      const related = relatedRequest(session, message)
      const candidate = message as { method?: unknown; id?: unknown }
      if (candidate.method === undefined) forget(session, candidate.id)
      session.http
        .send(message, related === undefined ? undefined : { relatedRequestId: related as never })
        .catch((error: Error) => onError(error))
    }
    child.onclose = () => void end(session)
    child.onerror = (error) => onError(error)
    await child.start()
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
    async handle(request, _body, parsedBody) {
      const sessionId = request.headers.get('mcp-session-id')
      if (sessionId !== null) {
        const session = sessions.get(sessionId)
        // The SDK's answer for an unknown session: the client starts a new one.
        if (session === undefined) return rpcErrorResponse(404, -32001, 'Session not found')
        return session.http.handleRequest(request, { parsedBody })
      }
      const messages = Array.isArray(parsedBody) ? parsedBody : [parsedBody]
      if (request.method !== 'POST' || !messages.some((message) => isInitializeRequest(message))) {
        return rpcErrorResponse(400, INVALID_REQUEST, 'Bad Request: No valid session ID provided')
      }
      let session: Session
      try {
        session = await open()
      } catch (error) {
        onError(new Error(`upstream command could not start: ${(error as Error).message}`))
        return rpcErrorResponse(502, INTERNAL_ERROR, 'The upstream MCP server could not be started')
      }
      const response = await session.http.handleRequest(request, { parsedBody })
      // An initialize the transport refused leaves a child nobody can reach.
      if (session.http.sessionId === undefined) await end(session)
      return response
    },
    async close() {
      await Promise.allSettled([...sessions.values()].map(end))
    },
  }
}
