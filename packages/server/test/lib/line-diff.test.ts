import { describe, expect, it } from 'vitest'
import { lineDiff } from '../../src/lib/line-diff.js'

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
})
