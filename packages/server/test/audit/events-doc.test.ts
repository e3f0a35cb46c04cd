import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// docs/events.md is what an auditor reads to make sense of the chain: every event type the code
// writes (`type: 'x.y'` in packages/server/src and packages/mcp/src) has its row there.

const ROOT = join(import.meta.dirname, '../../../..')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

describe('docs/events.md', () => {
  it('has a row for every event type the code writes', () => {
    const written = new Set<string>()
    for (const file of [
      ...sources(join(ROOT, 'packages/server/src')),
      ...sources(join(ROOT, 'packages/mcp/src')),
    ])
      for (const [, type] of readFileSync(file, 'utf8').matchAll(/type: '([a-z-]+\.[a-z-]+)'/g))
        written.add(type as string)
    const doc = readFileSync(join(ROOT, 'docs/events.md'), 'utf8')
    const documented = new Set([...doc.matchAll(/^\| `([a-z-]+\.[a-z-]+)` \|/gm)].map((m) => m[1]))
    expect(written.size).toBeGreaterThan(20)
    expect([...written].filter((type) => !documented.has(type)).sort()).toEqual([])
  })
})
