import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SCREEN_SIZES, screenPages } from '../../../../scripts/screens/pages.mjs'
import { CONSOLE_SECTIONS } from '../../src/ui/console/layout.js'
import { PERSON_PAGES } from '../../src/ui/person-nav.js'

// Issue 15 §4: `npm run screens` photographs every page; a console section or a person page
// left out of its list (scripts/screens/pages.mjs) fails here, not silently in the docs.
describe('the screenshot script’s page list (issue 15 §4)', () => {
  const pages = screenPages(CONSOLE_SECTIONS)

  it('covers every CONSOLE_SECTIONS entry, as the administrator', () => {
    for (const section of CONSOLE_SECTIONS) {
      expect(pages, section.key).toContainEqual({
        name: `console-${section.key}`,
        path: section.href,
        as: 'admin',
      })
    }
  })

  it('covers every page of the person’s navigation, the sign-in and the consent page', () => {
    const paths = pages.map((p) => p.path)
    for (const p of PERSON_PAGES) expect(paths, p.key).toContain(p.href)
    expect(pages).toContainEqual({ name: 'login', path: '/login', as: 'anonymous' })
    expect(pages.find((p) => p.name === 'consent')?.path).toBe('{authorize}')
  })

  it('gives every page a file name of its own, at 1280x800 and 390x844', () => {
    const names = pages.map((p) => p.name)
    expect(new Set(names).size).toBe(names.length)
    expect(SCREEN_SIZES.map((s) => [s.width, s.height])).toEqual([
      [1280, 800],
      [390, 844],
    ])
  })

  it('the screenshots the README shows are committed', () => {
    for (const file of ['account-desktop.png', 'agents-phone.png', 'console-dashboard-desktop.png'])
      expect(existsSync(new URL(`../../../../docs/screens/${file}`, import.meta.url)), file).toBe(
        true,
      )
  })
})
