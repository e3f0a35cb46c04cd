import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, expect, it, vi } from 'vitest'
import { messagePage } from '../../src/ui/message-page.js'

// ui/render-context.ts: pages render without AsyncLocalStorage, which on Node 20 would turn async
// hooks on for the whole process (every later promise dearer). Should hono look for it another
// way, this notices; the pages themselves would still render the same.
describe('page rendering and AsyncLocalStorage', () => {
  it('renders a page, escaped as before, without ever running in an AsyncLocalStorage', () => {
    const run = vi.spyOn(AsyncLocalStorage.prototype, 'run')
    const enterWith = vi.spyOn(AsyncLocalStorage.prototype, 'enterWith')
    try {
      const html = messagePage({
        title: 'Stopped <here>',
        text: 'a & b',
        link: { href: '/x', label: 'Go' },
      })
      expect(html.startsWith('<!doctype html><html lang="en">')).toBe(true)
      expect(html).toContain('Stopped &lt;here&gt;')
      expect(html).toContain('a &amp; b')
      expect(run).not.toHaveBeenCalled()
      expect(enterWith).not.toHaveBeenCalled()
    } finally {
      run.mockRestore()
      enterWith.mockRestore()
    }
  })
})
