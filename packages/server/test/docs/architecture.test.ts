import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// docs/architecture.md is a newcomer's map (issue 10 §5): a file it names must exist, and every
// source folder of packages/server/src must have its row in "Who owns what".

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
const PAGE = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8')
const SERVER_SRC = join(ROOT, 'packages/server/src')

/** Where a path the page names may be relative to: the repository, or a package's source. */
const BASES = ['', 'packages/server/src', 'packages/mcp/src', 'packages/server', 'packages/mcp']

/** Every file and folder below the packages and examples, by its name, for names given bare. */
function fileNames(): Set<string> {
  const names = new Set<string>(readdirSync(ROOT))
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue
      if (entry.isDirectory()) {
        names.add(`${entry.name}/`)
        walk(join(dir, entry.name))
      } else names.add(entry.name)
    }
  }
  for (const dir of ['packages', 'examples']) walk(join(ROOT, dir))
  return names
}

/** The backticked file and folder paths: a name with a file ending, or one ending in a slash. */
function namedPaths(): string[] {
  // A row that says "not yet" names a folder a later issue adds.
  const now = PAGE.split('\n').filter((line) => !line.includes('not yet'))
  const quoted = now.flatMap((line) =>
    [...line.matchAll(/`([^`\s]+)`/g)].map((m) => m[1] as string),
  )
  return [
    ...new Set(
      quoted.filter(
        (p) =>
          /^[\w.-]+(\/[\w.-]+)*\/?$/.test(p) &&
          !p.startsWith('../') &&
          (/\.(ts|tsx|md|json|cjs)$/.test(p) || p.endsWith('/')),
      ),
    ),
  ]
}

describe('docs/architecture.md', () => {
  it('names only files and folders that exist', () => {
    const names = fileNames()
    const missing = namedPaths().filter((p) =>
      /.\/./.test(p) ? !BASES.some((base) => existsSync(join(ROOT, base, p))) : !names.has(p),
    )
    expect(namedPaths().length).toBeGreaterThan(50)
    expect(missing).toEqual([])
  })

  it('has a row for every source folder of packages/server/src', () => {
    const folders = readdirSync(SERVER_SRC, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
    const rows = folders.filter((folder) => PAGE.includes(`| \`${folder}/\` |`))
    expect(rows).toEqual(folders)
  })
})
