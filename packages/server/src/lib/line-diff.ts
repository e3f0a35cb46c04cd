/** One line of a diff: kept from both texts, only in the new one, or only in the old one. */
export interface DiffLine {
  readonly kind: 'same' | 'added' | 'removed'
  readonly text: string
}

/**
 * A line diff of `before` and `after` (a longest common subsequence of their lines), in reading
 * order, removals before the additions that replace them. The common start and end are matched
 * first, so the table covers only the lines that differ. A policy text may have ~30,000 lines
 * (60,000 characters): two that differ throughout would need a table of 9×10⁸ cells, so past
 * MAX_TABLE_CELLS the differing middle is shown as removed and then added, whole.
 */
/** The most cells of the LCS table (4 bytes each: 16 MB) before the middle is shown whole. */
export const MAX_TABLE_CELLS = 4_000_000

export function lineDiff(before: string, after: string): DiffLine[] {
  const a = splitLines(before)
  const b = splitLines(after)
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--
    endB--
  }
  const head = a.slice(0, start).map(same)
  const tail = a.slice(endA).map(same)
  const oldLines = a.slice(start, endA)
  const newLines = b.slice(start, endB)
  const n = oldLines.length
  const m = newLines.length
  if ((n + 1) * (m + 1) > MAX_TABLE_CELLS) {
    const removed = oldLines.map((text): DiffLine => ({ kind: 'removed', text }))
    const added = newLines.map((text): DiffLine => ({ kind: 'added', text }))
    return [...head, ...removed, ...added, ...tail]
  }
  // lengths[i * (m + 1) + j]: the LCS length of oldLines[i..] and newLines[j..].
  const lengths = new Uint32Array((n + 1) * (m + 1))
  const at = (i: number, j: number) => lengths[i * (m + 1) + j] as number
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i * (m + 1) + j] =
        oldLines[i] === newLines[j] ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1))
    }
  }
  const middle: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && oldLines[i] === newLines[j]) {
      middle.push(same(oldLines[i] as string))
      i++
      j++
    } else if (i < n && (j === m || at(i + 1, j) >= at(i, j + 1))) {
      middle.push({ kind: 'removed', text: oldLines[i] as string })
      i++
    } else {
      middle.push({ kind: 'added', text: newLines[j] as string })
      j++
    }
  }
  return [...head, ...middle, ...tail]
}

function same(text: string): DiffLine {
  return { kind: 'same', text }
}

/** The lines of a text; a final newline ends the last line rather than starting another. */
function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.replace(/\r\n?/g, '\n').split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}
