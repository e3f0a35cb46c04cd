/**
 * Bounds on JSON that Deputy accepts from outside (admin API bodies, dynamic registration, client
 * metadata documents, custom claims). Two things in otherwise valid JSON break the layers below:
 * deep nesting, which overflows the stack of the recursive `JSON.stringify` and canonical-JSON
 * walks (5,000 levels fit in 30 KB), and the NUL character `\u0000`, which PostgreSQL text cannot
 * hold (`invalid byte sequence for encoding "UTF8": 0x00`). Both are refused here, at the
 * boundary, with one line naming the problem.
 */

/** The deepest nesting of arrays and objects accepted; Deputy's own documents need a handful. */
export const MAX_JSON_DEPTH = 32

/** Why JSON text or a value was refused, as the end of a sentence ("the request body …"). */
export type JsonProblem = string

const NUL_PROBLEM = 'contains a NUL character (\\u0000)'
const depthProblem = (max: number) => `is nested deeper than ${max} levels`

/**
 * The problem with JSON text, or null: nesting deeper than `maxDepth` or a NUL character (raw or
 * escaped), anywhere in the text, strings and keys included. One linear pass over the characters,
 * before `JSON.parse` builds anything; text that is not JSON at all is left for the parser.
 */
export function jsonTextProblem(text: string, maxDepth = MAX_JSON_DEPTH): JsonProblem | null {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (ch === 0) return NUL_PROBLEM
    if (inString) {
      if (ch === 0x5c /* \ */) {
        if (text.charCodeAt(i + 1) === 0x75 /* u */ && text.startsWith('0000', i + 2)) {
          return NUL_PROBLEM
        }
        i++
      } else if (ch === 0x22 /* " */) inString = false
    } else if (ch === 0x22) inString = true
    else if (ch === 0x5b /* [ */ || ch === 0x7b /* { */) {
      if (++depth > maxDepth) return depthProblem(maxDepth)
    } else if (ch === 0x5d /* ] */ || ch === 0x7d /* } */) depth--
  }
  return null
}

/**
 * The problem with a value that came from JSON (or will go into it), or null: the same bounds as
 * `jsonTextProblem`, checked on the value. Never recurses deeper than `maxDepth + 1`.
 */
export function jsonValueProblem(value: unknown, maxDepth = MAX_JSON_DEPTH): JsonProblem | null {
  function walk(v: unknown, depth: number): JsonProblem | null {
    if (typeof v === 'string') return v.includes('\u0000') ? NUL_PROBLEM : null
    if (typeof v !== 'object' || v === null) return null
    if (depth >= maxDepth) return depthProblem(maxDepth)
    if (Array.isArray(v)) {
      for (const item of v) {
        const problem = walk(item, depth + 1)
        if (problem) return problem
      }
      return null
    }
    for (const [key, item] of Object.entries(v)) {
      if (key.includes('\u0000')) return NUL_PROBLEM
      const problem = walk(item, depth + 1)
      if (problem) return problem
    }
    return null
  }
  return walk(value, 0)
}

/** JSON text that broke a bound or did not parse; `message` is one line for the caller. */
export class JsonInputError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JsonInputError'
  }
}

/**
 * Parses JSON from outside within the bounds. `what` names the input in messages, e.g. "the
 * request body" gives `the request body is nested deeper than 32 levels`.
 */
export function parseJsonInput(text: string, what = 'the request body'): unknown {
  const problem = jsonTextProblem(text)
  if (problem) throw new JsonInputError(`${what} ${problem}`)
  try {
    return JSON.parse(text)
  } catch {
    throw new JsonInputError(`${what} is not valid JSON`)
  }
}
