import { describe, expect, it } from 'vitest'
import { lineDiff, MAX_TABLE_CELLS } from '../../src/lib/line-diff.js'

/** A diff as `  kept`, `+ added`, `- removed` lines, as one reads it. */
function shown(before: string, after: string): string[] {
  return lineDiff(before, after).map(
    (l) => `${l.kind === 'added' ? '+' : l.kind === 'removed' ? '-' : ' '} ${l.text}`,
  )
}

describe('line diff (the console shows what changed between policy versions)', () => {
  it('keeps the common lines and marks a changed line as removed, then added', () => {
    expect(shown('a\nb\nc\n', 'a\nB\nc\n')).toEqual(['  a', '- b', '+ B', '  c'])
  })

  it('finds a longest common subsequence, not just a common start and end', () => {
    expect(shown('x\na\ny\nb\nz', 'a\nq\nb')).toEqual(['- x', '  a', '- y', '+ q', '  b', '- z'])
  })

  it('treats the first version as all added and a removal as all removed', () => {
    expect(shown('', 'permit (principal, action, resource);')).toEqual([
      '+ permit (principal, action, resource);',
    ])
    expect(shown('one\ntwo\n', '')).toEqual(['- one', '- two'])
    expect(lineDiff('same\n', 'same')).toEqual([{ kind: 'same', text: 'same' }])
  })

  it('reads CRLF line ends as LF, so a pasted text does not differ on every line', () => {
    expect(shown('a\r\nb\r\n', 'a\nb\n')).toEqual(['  a', '  b'])
  })

  it('stays fast on texts of a thousand lines that differ throughout', () => {
    const before = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n')
    const after = Array.from({ length: 1000 }, (_, i) => `line ${i % 2 ? i : -i}`).join('\n')
    const started = performance.now()
    const diff = lineDiff(before, after)
    expect(performance.now() - started).toBeLessThan(2000)
    expect(diff.filter((l) => l.kind === 'same')).toHaveLength(501)
  })

  it('two long texts that differ throughout: the middle whole, removed then added, without the table', () => {
    // 30,000 lines each, as a 60,000-character policy can have: the table would be 9×10⁸ cells.
    const lines = 30_000
    expect((lines + 1) ** 2).toBeGreaterThan(MAX_TABLE_CELLS)
    const before = `head\n${Array.from({ length: lines }, (_, i) => `a${i}`).join('\n')}\ntail`
    const after = `head\n${Array.from({ length: lines }, (_, i) => `b${i}`).join('\n')}\ntail`
    const diff = lineDiff(before, after)
    expect(diff).toHaveLength(2 * lines + 2)
    expect(diff[0]).toEqual({ kind: 'same', text: 'head' })
    expect(diff[1]).toEqual({ kind: 'removed', text: 'a0' })
    expect(diff[lines + 1]).toEqual({ kind: 'added', text: 'b0' })
    expect(diff.at(-1)).toEqual({ kind: 'same', text: 'tail' })
  })
})
