import { CompiledQuery } from 'kysely'

/**
 * A statement whose SQL text is the same on every call, only its parameters changing: Kysely
 * builds and compiles it once, and each later call pairs that text with the call's parameters.
 * Building and compiling (operation nodes, freezing, visiting) cost more than running the
 * statement on the flows' hot writes and reads. Only for statements of one fixed shape: an `in`
 * list of varying length, say, changes the text. `parameters` lists the call's values in the order the
 * compiled text takes them; the first compile checks that it gives exactly those values in that
 * order, and when it does not, the statement is built and compiled on every call, as before.
 */
export function reusedStatement<A extends unknown[], R = unknown>(
  build: (...args: A) => CompiledQuery<R>,
  parameters: (...args: A) => readonly unknown[],
): (...args: A) => CompiledQuery<R> {
  let text: string | undefined
  let checked = false
  return (...args) => {
    if (text !== undefined)
      return CompiledQuery.raw(text, [...parameters(...args)]) as CompiledQuery<R>
    const compiled = build(...args)
    if (!checked) {
      checked = true
      const expected = parameters(...args)
      const same =
        expected.length === compiled.parameters.length &&
        expected.every((value, i) => Object.is(value, compiled.parameters[i]))
      if (same) text = compiled.sql
    }
    return compiled
  }
}
