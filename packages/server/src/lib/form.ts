/**
 * Form bodies (`application/x-www-form-urlencoded`) as the OAuth endpoints must read them:
 * that media type only, each parameter at most once, empty values treated as absent, and no NUL
 * character in a name or value (`%00`: no OAuth parameter holds one, and PostgreSQL text cannot,
 * so it would turn a caller's mistake into a database error).
 */

/** Why a body was refused; the OAuth layer turns it into `invalid_request`. */
export class FormError extends Error {
  readonly problem: 'not-form' | 'duplicate-parameter' | 'nul-character'
  readonly parameter: string | undefined

  constructor(problem: FormError['problem'], message: string, parameter?: string) {
    super(message)
    this.name = 'FormError'
    this.problem = problem
    this.parameter = parameter
  }
}

/** A parsed form: single-valued parameters, and the repeatable ones as lists. */
export interface Form {
  /** The parameter's value, or undefined when absent or empty. */
  get(name: string): string | undefined
  /** Every value of a repeatable parameter (e.g. RFC 8707 `resource`). */
  all(name: string): string[]
  /** True when the parameter was sent, even with an empty value. */
  has(name: string): boolean
}

const FORM_TYPE = 'application/x-www-form-urlencoded'

/** True when a Content-Type header names the form media type (parameters such as charset allowed). */
export function isFormContentType(contentType: string | null | undefined): boolean {
  if (!contentType) return false
  const semicolon = contentType.indexOf(';')
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim()
  return type.toLowerCase() === FORM_TYPE
}

/**
 * Parses a form body. RFC 6749 §3.1: "Request and response parameters MUST NOT be included more
 * than once", and parameters sent without a value are treated as omitted. Names listed in
 * `repeatable` may appear several times and are only read through `all`.
 */
export function parseForm(body: string, repeatable: ReadonlySet<string> = NO_NAMES): Form {
  const single = new Map<string, string>()
  const multi = new Map<string, string[]>()
  const seen = new Set<string>()
  for (const [name, value] of new URLSearchParams(body)) {
    if (hasNul(name) || hasNul(value)) {
      const named = /^[a-z_]{1,40}$/.test(name)
      throw new FormError(
        'nul-character',
        `${named ? `parameter "${name}"` : 'a parameter'} contains a NUL character (%00)`,
        named ? name : undefined,
      )
    }
    if (repeatable.has(name)) {
      seen.add(name)
      if (value === '') continue
      const list = multi.get(name)
      if (list) list.push(value)
      else multi.set(name, [value])
      continue
    }
    if (seen.has(name)) {
      throw new FormError('duplicate-parameter', `parameter "${name}" appears more than once`, name)
    }
    seen.add(name)
    if (value !== '') single.set(name, value)
  }
  return {
    get: (name) => single.get(name),
    all: (name) => multi.get(name) ?? [],
    has: (name) => seen.has(name),
  }
}

/** Reads and parses the form body of a request, refusing any other media type. */
export async function readForm(
  request: { header(name: string): string | undefined; text(): Promise<string> },
  repeatable?: ReadonlySet<string>,
): Promise<Form> {
  if (!isFormContentType(request.header('content-type'))) {
    throw new FormError('not-form', `the body must be ${FORM_TYPE}`)
  }
  return parseForm(await request.text(), repeatable)
}

const NO_NAMES: ReadonlySet<string> = new Set()

/** True when a decoded parameter name or value holds a NUL character. */
export function hasNul(value: string): boolean {
  return value.includes('\u0000')
}
