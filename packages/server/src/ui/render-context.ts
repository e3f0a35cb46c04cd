import { jsx } from 'hono/jsx'

/**
 * hono/jsx looks for AsyncLocalStorage the first time anything renders, and from then on runs
 * every render inside `AsyncLocalStorage.run`. On Node 20 the first `run` turns async hooks on
 * for the whole process, for good: every promise of every later request then pays the hooks'
 * bookkeeping, on the token endpoint as much as on pages. hono needs the storage only for
 * context read after an `await` in an async component; Deputy's components are synchronous and
 * read no context, and for synchronous renders hono keeps its store for the render itself (its
 * fallback when a runtime has no AsyncLocalStorage). So hono's one look is made here, before
 * any page renders, with `node:async_hooks` out of its sight; renders then never touch it.
 * Should a later hono look differently, pages still render the same, only dearer again
 * (test/ui/render-context.test.ts notices).
 */
function renderOnceWithoutAsyncLocalStorage(): void {
  const names = ['getBuiltinModule', 'mainModule'] as const
  const saved = names.map((name) => Object.getOwnPropertyDescriptor(process, name))
  try {
    for (const name of names) {
      Object.defineProperty(process, name, { value: undefined, configurable: true, writable: true })
    }
    String(jsx('i', {}))
  } finally {
    names.forEach((name, i) => {
      const descriptor = saved[i]
      if (descriptor) Object.defineProperty(process, name, descriptor)
      else delete (process as unknown as Record<string, unknown>)[name]
    })
  }
}

renderOnceWithoutAsyncLocalStorage()
