/** A page `npm run screens` photographs (pages.mjs). */
export interface ScreenPage {
  name: string
  path: string
  as: 'anonymous' | 'person' | 'admin'
}

export function screenPages(consoleSections: readonly { key: string; href: string }[]): ScreenPage[]

export const SCREEN_SIZES: readonly { name: string; width: number; height: number }[]
