import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Page } from 'playwright-core'
import { expect } from 'vitest'

/** The two sizes every console page is checked at: a phone and a desktop. */
export const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
] as const

const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
)

/**
 * Runs axe-core in the page and returns the serious and critical violations. The source goes in
 * through the DevTools protocol (`evaluate`), not a `<script>` tag: Deputy's CSP refuses inline
 * script, and the pages are checked under the CSP they are served with.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE)
  const violations = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run(
            context: unknown,
            options: unknown,
          ): Promise<{
            violations: { id: string; impact: string; nodes: { target: unknown }[] }[]
          }>
        }
      }
    ).axe
    // Violations only: the passes and inapplicable rules are most of axe's work and output.
    const result = await axe.run(document, { resultTypes: ['violations'] })
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.map((n) => JSON.stringify(n.target)),
    }))
  })
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.targets.join(', ')}`)
}

/**
 * What every console page must be at both sizes: no serious or critical axe violation, nothing
 * wider than the screen (no sideways scrolling on a phone), and a visible keyboard focus.
 */
export async function expectUsablePage(page: Page): Promise<void> {
  expect(await seriousViolations(page)).toEqual([])
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  )
  expect(overflow).toBeLessThanOrEqual(0)
  // The first Tab reaches the skip link, the second the first link of the navigation.
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  const focus = await page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null
    const style = el ? getComputedStyle(el) : null
    return { tag: el?.tagName, outline: style?.outlineStyle, width: style?.outlineWidth }
  })
  expect(focus.tag).toBe('A')
  expect(focus.outline).not.toBe('none')
  expect(focus.width).not.toBe('0px')
}
